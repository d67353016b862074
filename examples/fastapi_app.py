"""FastAPI: every LLM call made while serving a request is billed to the customer that request names.

pip install "usagetap[fastapi,openai]" fastapi
python examples/fastapi_app.py
"""

from __future__ import annotations

import asyncio
from typing import Optional

import httpx
from fastapi import FastAPI, Request
from openai import AsyncOpenAI

import usagetap
from usagetap.integrations.asgi import UsagetapMiddleware
from usagetap.testing import ProviderServer

llm: AsyncOpenAI  # usagetap.wrap(AsyncOpenAI()) in an application; here, pointed at the loopback provider


def customer_of(request: Request) -> Optional[str]:
    """Who pays for this request: an authentication middleware would have set it; here, a header."""
    return request.headers.get("x-org-id")


app = FastAPI()
app.add_middleware(UsagetapMiddleware, resolver=customer_of, dimensions={"product": "api"})


@app.post("/summarize")
async def summarize(request: Request) -> dict[str, str]:
    text = (await request.json())["text"]
    reply = await llm.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": f"Summarize: {text}"}]
    )
    return {"id": reply.id, "summary": reply.choices[0].message.content or ""}


async def serve(orgs: list[str]) -> list[dict[str, str]]:
    """Send one request per org, concurrently, through the ASGI app (no network)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.local") as web:
        replies = await asyncio.gather(
            *(web.post("/summarize", json={"text": "usage"}, headers={"x-org-id": org}) for org in orgs)
        )
    return [reply.json() for reply in replies]


def main() -> tuple[list[dict[str, str]], list[usagetap.UsageRecord]]:
    global llm
    sink = usagetap.sinks.Memory()
    usagetap.configure(sink=sink)
    with ProviderServer() as server:
        llm = usagetap.wrap(AsyncOpenAI(base_url=server.openai_url, api_key="sk-local"))
        replies = asyncio.run(serve(["org_acme", "org_globex", "org_acme"]))
    usagetap.flush(timeout=5.0)
    for r in sink.records:
        print(f"{r.response_id} -> {r.customer} ({r.dimensions['product']}): {r.output_tokens} tokens out")
    return replies, list(sink.records)


if __name__ == "__main__":
    main()
