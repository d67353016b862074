"""Agent runs with totals, a budget guard and a markup, offline against the bundled loopback provider.

pip install "usagetap[openai]"
python examples/agent_runs.py
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from openai import OpenAI

import usagetap
from usagetap.testing import ProviderServer


def main() -> list[usagetap.Run]:
    usagetap.configure(sink=usagetap.sinks.Memory(), customer_policy="require")
    usagetap.prices.markup(1.3)  # what customers pay: recorded as billed_cost, cost stays the provider's
    usagetap.limits.set("org_free", max_tokens=250, period="day")  # each call reserves its worst case first
    runs: list[usagetap.Run] = []
    with ProviderServer() as server:
        client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-local"))

        def ask(question: str) -> str:
            reply = client.chat.completions.create(
                model="gpt-4.1-mini", messages=[{"role": "user", "content": question}], max_tokens=10
            )
            return reply.choices[0].message.content or ""

        @usagetap.track(customer=lambda org, **_: org, feature="research")
        def research(org: str, topic: str) -> None:
            run = usagetap.current_run()
            assert run is not None
            runs.append(run)
            ask(f"Plan research on {topic}")
            with ThreadPoolExecutor(max_workers=3) as pool:  # threads need propagate() to keep the run
                list(pool.map(usagetap.propagate(ask), [f"{topic} part {i}" for i in range(3)]))

        research("org_paid", "metering")
        try:
            for attempt in range(100):  # until the free tier's daily budget cannot cover a call
                research("org_free", f"billing, take {attempt + 1}")
        except usagetap.BudgetExceeded as exc:
            print(f"refused: {exc.customer} used {exc.tokens} of {exc.max_tokens} tokens today")
        try:
            ask("who pays for this?")
        except usagetap.MissingCustomer:
            print("refused: a call with no customer")
    usagetap.flush(timeout=5.0)
    for run in runs:
        print(
            f"{run.customer}: {run.calls} calls, {run.input_tokens} in / {run.output_tokens} out, "
            f"cost ${run.cost}, billed ${run.billed_cost}, error={run.error}"
        )
    return runs


if __name__ == "__main__":
    main()
