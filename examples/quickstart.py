"""One-line wrap: meter an OpenAI client per customer, offline against the bundled loopback provider.

pip install "usagetap[openai]"
python examples/quickstart.py
"""

from __future__ import annotations

from openai import OpenAI

import usagetap
from usagetap.testing import ProviderServer


def main() -> list[usagetap.UsageRecord]:
    sink = usagetap.sinks.Memory()
    usagetap.configure(sink=sink)
    with ProviderServer() as server:
        client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-local"))
        for org in ("org_1", "org_2"):
            with usagetap.customer(org, feature="chat"):
                client.chat.completions.create(
                    model="gpt-4.1", messages=[{"role": "user", "content": "Hello"}]
                )
    usagetap.flush(timeout=5.0)
    for r in sink.records:
        print(f"{r.customer}: {r.input_tokens} in / {r.output_tokens} out, ${r.cost}")
    return list(sink.records)


if __name__ == "__main__":
    main()
