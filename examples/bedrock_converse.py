"""Meter AWS Bedrock through boto3: Converse and ConverseStream per customer, offline against the
bundled loopback provider (dummy credentials; any SigV4 signature is accepted).

pip install "usagetap[bedrock]"
python examples/bedrock_converse.py
"""

from __future__ import annotations

import boto3

import usagetap
from usagetap.testing import ProviderServer

MODEL = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"  # a US cross-region inference profile


def main() -> list[usagetap.UsageRecord]:
    sink = usagetap.sinks.Memory()
    usagetap.configure(sink=sink)
    with ProviderServer() as server:
        bedrock = usagetap.wrap(
            boto3.client(
                "bedrock-runtime",
                endpoint_url=server.url,  # leave out to call AWS
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
            )
        )
        handbook = [
            {"text": "You answer from the employee handbook. " * 20},
            {"cachePoint": {"type": "default"}},
        ]
        for org in ("org_acme", "org_globex"):
            with usagetap.customer(org, feature="handbook"):
                bedrock.converse(
                    modelId=MODEL,
                    system=handbook,
                    messages=[{"role": "user", "content": [{"text": "How many vacation days?"}]}],
                )
        with usagetap.customer("org_acme", feature="handbook"):
            stream = bedrock.converse_stream(
                modelId=MODEL, messages=[{"role": "user", "content": [{"text": "And sick days?"}]}]
            )
            text = "".join(
                event["contentBlockDelta"]["delta"]["text"]
                for event in stream["stream"]
                if "contentBlockDelta" in event
            )
    usagetap.flush(timeout=5.0)
    print(f"streamed: {text[:40]}...")
    for r in sink.records:
        cached = f"{r.cache_write_tokens} cache write / {r.cache_read_tokens} cache read"
        print(f"{r.customer}: {r.input_tokens} in ({cached}) / {r.output_tokens} out, ${r.cost}")
    return list(sink.records)


if __name__ == "__main__":
    main()
