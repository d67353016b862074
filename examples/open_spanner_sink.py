"""Open Spanner: create the meter once (``ensure_meter()``), then send one usage item per token type
(``split_by_token_type=True``) so that cached input and output can be priced apart. Runs offline against
the loopback Open Spanner of ``usagetap.testing.backends``.

pip install "usagetap[openai,testing]"
python examples/open_spanner_sink.py
"""

from __future__ import annotations

from openai import OpenAI

import usagetap
from usagetap.testing import ProviderServer
from usagetap.testing.backends import OpenSpannerBackend

CONTEXT = "You answer questions about the Acme billing handbook. " * 12  # long enough to be cached


def main() -> tuple[OpenSpannerBackend, ProviderServer]:
    """Bill one customer twice (the second call reads a cached prompt); return backend and provider."""
    with OpenSpannerBackend() as spanner, ProviderServer() as provider:
        sink = usagetap.sinks.OpenSpanner(
            api_key=spanner.api_key,  # in production: os.environ["OPEN_SPANNER_API_KEY"]
            base_url=spanner.url,  # your deployment
            meter="ai_tokens",
            split_by_token_type=True,  # items "input" (uncached), "cache_read", "cache_write", "output"
            dimensions=["feature"],  # record dimensions to send; they become meter dimensions
        )
        sink.ensure_meter()  # creates the meter with its typed dimensions unless it exists
        usagetap.configure(sink=sink)
        client = usagetap.wrap(OpenAI(base_url=provider.openai_url, api_key="sk-local"))
        question = "How are refunds billed?"
        messages = [{"role": "system", "content": CONTEXT}, {"role": "user", "content": question}]
        with usagetap.customer("org_acme", feature="handbook"):
            for _ in range(2):  # the same prompt twice: the second call reads it from the provider's cache
                client.chat.completions.create(model="gpt-4.1", messages=messages)
        usagetap.flush(timeout=5.0)
    for subject, row in spanner.totals().items():
        print(f"{subject}: " + ", ".join(f"{key} {value:g}" for key, value in row.items()))
    return spanner, provider


if __name__ == "__main__":
    main()
