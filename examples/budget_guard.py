"""Budget guard: each call reserves its worst case (input estimate + max_tokens) before it is sent; once
a customer's daily tokens cannot cover it, the call is refused before it reaches the provider (no cost
incurred), with the figures in the exception. Every process of the machine shares the budget.

pip install "usagetap[openai]"
python examples/budget_guard.py
"""

from __future__ import annotations

from openai import OpenAI

import usagetap
from usagetap.testing import ProviderServer


def main() -> tuple[int, usagetap.BudgetExceeded, int]:
    """Return the calls made, the refusal, and how many requests the provider received."""
    usagetap.configure(sink=usagetap.sinks.Memory())
    usagetap.limits.set("org_trial", max_tokens=200, period="day")  # or max_cost=5 (USD), period="month"
    with ProviderServer() as server:
        client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-local"))
        calls = 0
        with usagetap.customer("org_trial"):
            while True:
                try:
                    client.chat.completions.create(
                        model="gpt-4.1-mini",
                        messages=[{"role": "user", "content": "One more idea?"}],
                        max_tokens=20,
                    )
                except usagetap.BudgetExceeded as exc:
                    refusal = exc
                    break
                calls += 1
        print(f"{calls} calls, then refused: {refusal}")
        print(f"the provider received {len(server.requests)} requests")
        return calls, refusal, len(server.requests)


if __name__ == "__main__":
    main()
