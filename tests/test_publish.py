"""One publish path: every finished call reaches each consumer once, as one capture, built and priced once."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from decimal import Decimal
from typing import Any

import openai
import pytest

import usagetap
from usagetap import _cost, publish
from usagetap.delivery import intake
from usagetap.delivery.warmup import warm
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "one publish path"}]


@pytest.fixture
def client(server: ProviderServer) -> openai.OpenAI:
    return usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


def chat(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)


class Recorder:
    def __init__(self) -> None:
        self.captures: list[Any] = []

    def on_end(self, capture: Any) -> None:
        self.captures.append(capture)


def test_a_registered_consumer_receives_each_finished_call_once(client: openai.OpenAI, sink: Memory) -> None:
    recorder = Recorder()
    publish.register(recorder)
    publish.register(recorder)  # registering twice changes nothing
    try:
        with usagetap.customer("org_p"):
            chat(client)
            list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
    finally:
        publish.unregister(recorder)
    chat(client)
    assert [c.customer for c in recorder.captures] == ["org_p", "org_p"]
    assert usagetap.flush().pending == 0
    records = [c.record() for c in recorder.captures]
    assert {r.event_id for r in records} <= {r.event_id for r in sink.records}


def test_a_record_is_priced_once_frozen_and_shared_by_the_run_and_delivery(
    client: openai.OpenAI, sink: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm()
    _cost.price_version()
    priced: list[str] = []
    original = _cost.price_record
    monkeypatch.setattr(_cost, "price_record", lambda r: priced.append(r.event_id) or original(r))
    with usagetap.track(customer="org_f") as run:
        chat(client)
        assert run.cost is not None
    assert usagetap.flush().pending == 0
    [mine] = run.records
    [delivered] = sink.records
    assert mine == delivered and mine.cost == run.cost and mine.price_version is not None
    assert priced == [mine.event_id]
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.cost = Decimal(0)  # type: ignore[misc]


def test_pricing_a_record_returns_a_priced_copy_and_leaves_the_record_as_it_was() -> None:
    from tests.helpers import make_record

    record = make_record()
    priced = _cost.price_record(record)
    assert record.cost is None and record.price_version is None
    assert priced is not record and priced.cost is not None and priced.event_id == record.event_id


def test_delivery_intake_imports_nothing_of_the_instrumentation() -> None:
    tree = ast.parse(inspect.getsource(intake))
    modules = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    modules += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert modules and not any("instrument" in m for m in modules), modules
