"""SolvaPay: ``usage.token`` events, units = tokens, against the customer references SolvaPay gave you.
Runs offline against the loopback SolvaPay of ``usagetap.testing.backends``.

pip install "usagetap[openai]"
python examples/solvapay_sink.py
"""

from __future__ import annotations

from openai import OpenAI

import usagetap
from usagetap.testing import ProviderServer
from usagetap.testing.backends import SolvaPayBackend


def main() -> tuple[SolvaPayBackend, ProviderServer]:
    """Bill two SolvaPay customers; return the backend and the provider to look at what each holds."""
    with SolvaPayBackend() as solvapay, ProviderServer() as provider:
        solvapay.customers = {"cus_3F9A2C", "cus_7B1D4E"}  # references from SolvaPay's ensureCustomer
        usagetap.configure(
            sink=usagetap.sinks.SolvaPay(
                api_key=solvapay.api_key,  # in production: os.environ["SOLVAPAY_SECRET_KEY"]
                base_url=solvapay.url,  # default https://api.solvapay.com
                product_ref="prd_assistant",  # the product the usage counts against
            )
        )
        client = usagetap.wrap(OpenAI(base_url=provider.openai_url, api_key="sk-local"))
        for customer_ref in sorted(solvapay.customers):
            with usagetap.customer(customer_ref):
                client.chat.completions.create(
                    model="gpt-4.1-mini", messages=[{"role": "user", "content": "Plan my week"}]
                )
        usagetap.flush(timeout=5.0)
    for customer_ref, row in solvapay.totals().items():
        print(f"{customer_ref}: {row['units']} units")
    return solvapay, provider


if __name__ == "__main__":
    main()
