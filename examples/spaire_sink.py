"""Spaire (or Polar): one ``llm.usage`` event per call, with the tokens in ``_llm`` and the cost in ``_cost``,
deduplicated on ``external_id``. Runs offline against the loopback Spaire of ``usagetap.testing.backends``.

pip install "usagetap[openai]"
python examples/spaire_sink.py
"""

from __future__ import annotations

from openai import OpenAI

import usagetap
from usagetap.testing import ProviderServer
from usagetap.testing.backends import SpaireBackend


def main() -> tuple[SpaireBackend, ProviderServer]:
    """Bill two customers; return the backend and the provider to look at what each holds."""
    with SpaireBackend() as spaire, ProviderServer() as provider:
        usagetap.configure(
            sink=usagetap.sinks.Spaire(
                api_key=spaire.api_key,  # in production: os.environ["SPAIRE_API_KEY"]
                base_url=spaire.url,  # default https://api.spairehq.com; usagetap.sinks.Polar for Polar
                event_name="llm.usage",  # what your Spaire meters filter on
            )
        )
        client = usagetap.wrap(OpenAI(base_url=provider.openai_url, api_key="sk-local"))
        for org, question in (("org_acme", "Draft a reply"), ("org_globex", "Translate this paragraph")):
            with usagetap.customer(org, feature="assistant"):
                messages = [{"role": "user", "content": question}]
                client.chat.completions.create(model="gpt-4.1", messages=messages)
        usagetap.flush(timeout=5.0)
    for customer, row in spaire.totals().items():  # what the backend holds, per customer
        print(
            f"{customer}: {row['events']} event(s), {row['total_tokens']} tokens, {row['cost_cents']} cents"
        )
    return spaire, provider


if __name__ == "__main__":
    main()
