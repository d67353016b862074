"""Meter a Mistral client per customer: a chat completion, a stream and embeddings, offline against
the bundled loopback provider.

pip install "usagetap[mistral]"
python examples/mistral_chat.py
"""

from __future__ import annotations

import usagetap
from usagetap.testing import ProviderServer

try:
    from mistralai.client import Mistral  # mistralai 2.x, 3.x
except ImportError:
    from mistralai import Mistral  # type: ignore[attr-defined,no-redef]  # mistralai 1.x


def main() -> list[usagetap.UsageRecord]:
    sink = usagetap.sinks.Memory()
    usagetap.configure(sink=sink)
    messages = [{"role": "user", "content": "Summarise our billing policy"}]
    with ProviderServer() as server:
        client = usagetap.wrap(Mistral(api_key="local", server_url=server.mistral_url))
        with usagetap.customer("org_acme", feature="support"):
            client.chat.complete(model="mistral-small-latest", messages=messages)
            for event in client.chat.stream(model="mistral-large-latest", messages=messages):
                print(event.data.choices[0].delta.content or "", end="")
            print()
        with usagetap.customer("org_globex", feature="search"):
            client.embeddings.create(model="mistral-embed", inputs=["billing policy", "refunds"])
    usagetap.flush(timeout=5.0)
    for r in sink.records:
        print(f"{r.customer} {r.operation} {r.model}: {r.input_tokens} in / {r.output_tokens} out, ${r.cost}")
    return list(sink.records)


if __name__ == "__main__":
    main()
