"""A Celery app on the in-memory broker, with tasks that make metered OpenAI calls."""

from __future__ import annotations

from typing import Any

import openai
from celery import Celery

import usagetap
from tests.integrations.conftest import HELLO
from usagetap._context import current_scope

app = Celery("usagetap-tests", broker="memory://", backend="cache+memory://", set_as_current=False)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_transport_options={"polling_interval": 0.01},
)


def _client(base_url: str) -> openai.OpenAI:
    return usagetap.wrap(openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0))


@app.task(name="tests.summarize")
def summarize(base_url: str) -> dict[str, Any]:
    """Make one metered call; report the scope the task ran in."""
    scope = current_scope()
    with _client(base_url) as client:
        completion = client.chat.completions.create(model="gpt-4.1", messages=HELLO)  # type: ignore[arg-type]
    return {"id": completion.id, "customer": scope.customer, "dimensions": dict(scope.dimensions)}


@app.task(name="tests.fan_out")
def fan_out(base_url: str) -> str:
    """Queue a follow-up task from inside a task."""
    return str(summarize.delay(base_url).id)
