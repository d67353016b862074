"""Serverless (an AWS Lambda handler): ``@usagetap.flushing`` delivers the invocation's usage before the
handler returns, because the platform may freeze the process right after. Runs offline: the loopback
provider stands in for OpenAI, the loopback Spaire for the billing backend.

pip install "usagetap[openai]"
python examples/serverless.py
"""

from __future__ import annotations

import json
from typing import Any

from openai import OpenAI

import usagetap
from usagetap.testing import ProviderServer
from usagetap.testing.backends import SpaireBackend

client: OpenAI


def cold_start(openai_url: str, spaire: SpaireBackend) -> None:
    """Module-level code in a real function: runs once per container, not per invocation.

    Lambda can write only under /tmp: set ``USAGETAP_SPOOL=/tmp/usagetap/spool.db`` in the function's
    environment, so that what a flush could not deliver in time waits there for the next invocation.
    """
    global client
    usagetap.configure(sink=usagetap.sinks.Spaire(api_key=spaire.api_key, base_url=spaire.url))
    client = usagetap.wrap(OpenAI(base_url=openai_url, api_key="sk-local"))


@usagetap.flushing(timeout=2.0)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    org = event["requestContext"]["authorizer"]["org_id"]
    text = json.loads(event["body"])["text"]
    with usagetap.customer(org, feature="summarize"):
        reply = client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": f"Summarize: {text}"}]
        )
    return {"statusCode": 200, "body": json.dumps({"summary": reply.choices[0].message.content})}


def api_gateway_event(org: str, text: str) -> dict[str, Any]:
    """The part of an API Gateway proxy event the handler reads."""
    return {"requestContext": {"authorizer": {"org_id": org}}, "body": json.dumps({"text": text})}


def main() -> tuple[list[int], SpaireBackend]:
    """Invoke the handler three times; return how many events the backend held as each one returned."""
    held: list[int] = []
    with ProviderServer() as provider, SpaireBackend() as spaire:
        cold_start(provider.openai_url, spaire)
        for org in ("org_acme", "org_globex", "org_acme"):
            response = handler(api_gateway_event(org, "quarterly usage"), None)
            held.append(len(spaire.events))  # the process could be frozen here: nothing is left behind
            print(f"{org}: HTTP {response['statusCode']}, the backend holds {held[-1]} event(s)")
    return held, spaire


if __name__ == "__main__":
    main()
