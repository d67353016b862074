"""Records carry the account they were billed to: an API-key fingerprint and the OpenAI project."""

from __future__ import annotations

import hashlib

from anthropic import Anthropic
from openai import OpenAI

import usagetap
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "hello"}]


def test_a_wrapped_openai_clients_records_carry_its_key_fingerprint_and_project(
    server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-proj-secret", project="proj_7"))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    usagetap.flush()
    (record,) = sink.records
    fingerprint = hashlib.sha256(b"sk-proj-secret").hexdigest()[:12]
    assert record.dimensions["api_key_fingerprint"] == fingerprint
    assert record.dimensions["openai_project"] == "proj_7"
    assert "sk-proj-secret" not in repr(record)


def test_an_instrumented_anthropic_clients_records_carry_its_key_fingerprint(
    server: ProviderServer, sink: Memory
) -> None:
    usagetap.instrument()
    client = Anthropic(base_url=server.anthropic_url, api_key="sk-ant-secret")
    client.messages.create(model="claude-3-5-haiku-latest", max_tokens=8, messages=MESSAGES)
    usagetap.flush()
    (record,) = sink.records
    assert record.dimensions["api_key_fingerprint"] == hashlib.sha256(b"sk-ant-secret").hexdigest()[:12]
    assert "openai_project" not in record.dimensions


def test_a_copy_with_another_key_carries_that_keys_fingerprint(server: ProviderServer, sink: Memory) -> None:
    client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-one"))
    client.with_options(api_key="sk-two").chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    usagetap.flush()
    (record,) = sink.records
    assert record.dimensions["api_key_fingerprint"] == hashlib.sha256(b"sk-two").hexdigest()[:12]


def test_a_project_the_user_binds_wins_over_the_clients_next_to_its_key_fingerprint(
    server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(
        OpenAI(base_url=server.openai_url, api_key="sk-x", project="proj_sdk"),
        dimensions={"openai_project": "proj_mine"},
    )
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    usagetap.flush()
    dimensions = sink.records[0].dimensions
    assert (dimensions["openai_project"], dimensions["api_key_fingerprint"]) == (
        "proj_mine",
        hashlib.sha256(b"sk-x").hexdigest()[:12],
    )
