"""LiteLLM metered by usagetap's callback, offline against the bundled loopback provider.

One record per call, whichever layer sees it: the Anthropic call (LiteLLM speaks HTTP itself)
is recorded by the callback; the OpenAI call goes through the openai SDK, which
``usagetap.instrument()`` meters, so the callback leaves that call's record to the SDK layer.

pip install "usagetap[litellm,openai]"
python examples/litellm_callback.py
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: LiteLLM's bundled price map

import litellm

import usagetap
from usagetap.integrations.litellm import callback, settle
from usagetap.testing import ProviderServer


def main() -> tuple[usagetap.Run, list[usagetap.UsageRecord]]:
    sink = usagetap.sinks.Memory()
    usagetap.configure(sink=sink)
    usagetap.instrument()
    litellm.callbacks = [callback]
    question = [{"role": "user", "content": "How is usage billed?"}]
    with ProviderServer() as server, usagetap.track(customer="org_acme", feature="support") as run:
        litellm.completion(
            model="anthropic/claude-sonnet-4-5",
            messages=question,
            max_tokens=40,
            api_base=server.anthropic_url,
            api_key="sk-ant-local",
        )
        litellm.completion(
            model="openai/gpt-4.1-mini", messages=question, api_base=server.openai_url, api_key="sk-local"
        )
    settle()  # LiteLLM reports sync calls from its logging thread, just after they return
    litellm.callbacks = []
    usagetap.flush(timeout=5.0)
    for r in sink.records:
        print(f"{r.customer} {r.provider}/{r.model}: {r.input_tokens} in, {r.output_tokens} out")
    print(f"run: {run.calls} calls, {run.input_tokens} in / {run.output_tokens} out, cost ${run.cost}")
    return run, list(sink.records)


if __name__ == "__main__":
    main()
