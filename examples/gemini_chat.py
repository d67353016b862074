"""Meter a Gemini chat per customer (google-genai), offline against the bundled loopback provider.

pip install "usagetap[google]"
python examples/gemini_chat.py
"""

from __future__ import annotations

from google import genai
from google.genai import types

import usagetap
from usagetap.testing import ProviderServer


def main() -> list[usagetap.UsageRecord]:
    sink = usagetap.sinks.Memory()
    usagetap.configure(sink=sink)
    with ProviderServer() as server:
        options = types.HttpOptions(base_url=server.url)  # drop it to talk to the Gemini API
        client = usagetap.wrap(genai.Client(api_key="gemini-local", http_options=options))
        with usagetap.customer("org_1", feature="chat"):
            chat = client.chats.create(model="gemini-2.5-flash")
            chat.send_message("Hello")
            for chunk in chat.send_message_stream("Tell me more"):
                print(chunk.text, end="")
            print()
    usagetap.flush(timeout=5.0)
    for r in sink.records:
        print(f"{r.customer} {r.provider}/{r.model}: {r.input_tokens} in / {r.output_tokens} out, ${r.cost}")
    return list(sink.records)


if __name__ == "__main__":
    main()
