"""Price provenance: every priced record says which table (and entry) priced it, and the ledger keeps it."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import anthropic

import usagetap
from tests.helpers import make_record
from usagetap._cost import price_record, price_version
from usagetap.db import ledger as ledger_db
from usagetap.sinks import Ledger
from usagetap.testing import ProviderServer


def test_a_table_price_names_genai_prices_and_its_version() -> None:
    r = price_record(make_record(model="gpt-4.1", input_tokens=1_000, output_tokens=10))
    assert r.price_source == price_version() and price_version().startswith("genai-prices ")
    assert r.price_issue is None and r.cost_items == {}


def test_a_user_price_names_prices_set() -> None:
    usagetap.prices.set("house-model", input_per_mtok=1, output_per_mtok=1)
    r = price_record(
        make_record(model="house-model", request_model="house-model", input_tokens=10, output_tokens=0)
    )
    assert (r.cost, r.price_source, r.price_issue) == (Decimal(10) / 1_000_000, "prices.set", None)


def test_an_unknown_model_says_why_it_has_no_cost() -> None:
    r = price_record(make_record(model="no-such-model", request_model=None, input_tokens=10, output_tokens=1))
    assert r.cost is None and r.price_source is None
    assert r.price_issue == "no price for model 'no-such-model' at 'openai'"


def test_a_self_hosted_model_says_why_it_has_no_cost() -> None:
    r = price_record(make_record(provider="ollama", model="llama3", input_tokens=10, output_tokens=1))
    assert r.cost is None and r.price_issue == "ollama is self-hosted: set a price with usagetap.prices.set"


def test_the_ledger_stores_fees_line_items_and_provenance(server: ProviderServer, tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    usagetap.configure(sink=Ledger(path), flush_interval=0.02)
    bare = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-ant-x", max_retries=0)
    client = usagetap.wrap(bare, customer="org_1")
    client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=40,
        messages=[{"role": "user", "content": "Look it up"}],
        tools=[{"type": "web_search_20250305", "name": "web_search"}],  # type: ignore[list-item]
    )
    assert usagetap.flush(timeout=5.0).pending == 0
    conn = ledger_db.connect(path, create=False)
    [stored] = list(ledger_db.iter_records(conn))
    row = conn.execute("SELECT fees, cost_items, price_source, price_issue FROM usage").fetchone()
    conn.close()
    assert stored.fees == {"web_search": 1} and stored.price_source == price_version()
    assert stored.cost == Decimal(str(stored.cost_items["tokens"])) + Decimal("0.01")
    assert row[0] == '{"web_search":1}' and row[2] == price_version() and row[3] is None


def test_a_ledger_from_before_the_pricing_columns_gains_them_and_reads_its_old_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = make_record(timestamp=datetime(2026, 1, 2, tzinfo=timezone.utc), cost=Decimal("0.5"))
    conn = ledger_db.connect(path)
    conn.execute(ledger_db._INSERT, ledger_db.row(old))
    for column in ("fees", "cost_items", "price_source", "price_issue"):
        conn.execute(f"ALTER TABLE usage DROP COLUMN {column}")
    conn.close()
    conn = ledger_db.connect(path)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(usage)")]
    [back] = list(ledger_db.iter_records(conn))
    conn.close()
    assert columns[-4:] == ["fees", "cost_items", "price_source", "price_issue"]
    assert back == old and (back.fees, back.cost_items, back.price_source) == ({}, {}, None)
