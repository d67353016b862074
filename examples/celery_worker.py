"""Celery: a task bills the customer whose code queued it (the scope travels in a message header), and
workers flush usagetap when they stop. Runs offline: Celery's in-memory broker and an embedded worker.

pip install "usagetap[celery,openai]"
python examples/celery_worker.py
"""

from __future__ import annotations

from celery import Celery
from celery.contrib.testing.worker import start_worker
from openai import OpenAI

import usagetap
from usagetap.integrations import celery as usagetap_celery
from usagetap.testing import ProviderServer

app = Celery("examples", broker="memory://", backend="cache+memory://")  # in production: redis://, amqp://
app.conf.worker_hijack_root_logger = False
usagetap_celery.install()  # where the app is defined: both the web process and the worker import it

llm: OpenAI  # usagetap.wrap(OpenAI()) at import time in a worker; here, pointed at the loopback provider


@app.task(name="examples.summarize")
def summarize(document: str) -> str:
    reply = llm.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": f"Summarize: {document}"}]
    )
    return reply.id


def main() -> tuple[dict[str, str], list[usagetap.UsageRecord]]:
    """Queue tasks for two customers from "web" code; return {response id: customer} and the records."""
    global llm
    sink = usagetap.sinks.Memory()
    usagetap.configure(sink=sink)
    with ProviderServer() as provider:
        llm = usagetap.wrap(OpenAI(base_url=provider.openai_url, api_key="sk-local"))
        with start_worker(app, pool="solo", perform_ping_check=False):
            queued = {}
            for org in ("org_acme", "org_globex"):
                with usagetap.customer(org, feature="digest"):  # e.g. set by the web framework's middleware
                    queued[org] = summarize.delay("the monthly report")
            billed_to = {result.get(timeout=30): org for org, result in queued.items()}
    usagetap.flush(timeout=5.0)
    for r in sink.records:
        print(f"task call {r.response_id} billed to {r.customer} ({r.dimensions['feature']})")
    return billed_to, list(sink.records)


if __name__ == "__main__":
    main()
