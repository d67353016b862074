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


OPENAI_KEY = "sk-proj-Zq3rT8wLmN2vB6xC1yH4kJ9pD5fG7sA0eR2tU8iO-wXyZ"
ANTHROPIC_KEY = "sk-ant-api03-Hq7Lm2Nx9Pv4Bt6Wc1Yk8Rz3Df5Gs0Ja2Ke4Mi6Oo8Uu1Tt3Ss5Rr7Qq9Pp0-ab1cdAA"


def test_an_openai_clients_records_carry_its_keys_type_prefix_and_last_four_as_the_hint(
    server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key=OPENAI_KEY))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    usagetap.flush()
    (record,) = sink.records
    assert record.dimensions["api_key_hint"] == "sk-proj-...wXyZ"


def test_an_anthropic_clients_records_carry_the_partial_key_hint_anthropic_shows(
    server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(Anthropic(base_url=server.anthropic_url, api_key=ANTHROPIC_KEY))
    client.messages.create(model="claude-3-5-haiku-latest", max_tokens=8, messages=MESSAGES)
    usagetap.flush()
    (record,) = sink.records
    # partial_key_hint: "sk-ant-api03-" + 3 characters, "...", the last 4
    assert record.dimensions["api_key_hint"] == "sk-ant-api03-Hq7...cdAA"


def test_only_a_key_long_enough_gets_a_hint_since_a_hint_would_be_most_of_a_short_one(
    server: ProviderServer, sink: Memory
) -> None:
    for key in ("sk-short-key-1", OPENAI_KEY):
        client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key=key))
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    usagetap.flush()
    assert [r.dimensions.get("api_key_hint") for r in sink.records] == [None, "sk-proj-...wXyZ"]
