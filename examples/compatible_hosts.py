"""OpenAI-compatible hosts and providers without a wrapper: a Groq client metered as ``groq``, and usage
from a Cohere call recorded by hand; both priced with genai-prices, offline.

pip install "usagetap[openai]"
python examples/compatible_hosts.py
"""

from __future__ import annotations

from openai import OpenAI

import usagetap
from usagetap.testing import ProviderServer


def main() -> list[usagetap.UsageRecord]:
    sink = usagetap.sinks.Memory()
    usagetap.configure(sink=sink)
    with ProviderServer(impersonate="groq") as groq:  # stands in for https://api.groq.com/openai/v1
        client = usagetap.wrap(OpenAI(base_url=groq.openai_url, api_key="gsk-local"))
        with usagetap.customer("org_1", feature="chat"):
            client.chat.completions.create(
                model="llama-3.1-8b-instant", messages=[{"role": "user", "content": "Hello"}]
            )
    with usagetap.customer("org_1", feature="search"):
        usagetap.record(provider="cohere", model="command-r-plus", input_tokens=1200, output_tokens=250)
    usagetap.flush(timeout=5.0)
    for r in sink.records:
        print(f"{r.customer} {r.provider}/{r.model}: {r.input_tokens} in / {r.output_tokens} out, ${r.cost}")
    return list(sink.records)


if __name__ == "__main__":
    main()
