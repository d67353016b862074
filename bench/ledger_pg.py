"""Rows/s into a PostgreSQL ledger through the Ledger sink, against raw executemany and COPY, and the
time of ``report --by day,customer`` over what was written. All in the same run, same server.

    python bench/ledger_pg.py --url postgresql://postgres@127.0.0.1:5432/bench --rows 100000

Everything goes into a scratch schema (``--schema``, dropped at the end); the database's own
tables are not touched. ``--rows 10000000`` is the issue's report target: run it on a machine
of its own (it writes ~3 GB and takes minutes).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.types.json import Jsonb

from usagetap._ledger_source import open_ledger
from usagetap._record import FIELDS, UsageRecord, field_values, new_event_id
from usagetap._report import aggregate
from usagetap.db import ledger_pg
from usagetap.sinks import Ledger


def _records(n: int, customers: int, days: int, seed: int) -> list[UsageRecord]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [
        UsageRecord(
            event_id=new_event_id(),
            timestamp=start + timedelta(seconds=rng.randrange(days * 86400)),
            customer=f"org_{rng.randrange(customers)}",
            provider="openai",
            model=rng.choice(("gpt-4.1", "gpt-4.1-mini", "o4-mini")),
            request_model=None,
            operation="chat",
            input_tokens=rng.randrange(10, 5000),
            output_tokens=rng.randrange(1, 800),
            cost=Decimal(rng.randrange(1, 10**6)) / Decimal(10**8),
            dimensions={"feature": rng.choice(("chat", "search", "summary"))},
        )
        for _ in range(n)
    ]


def _batches(records: Sequence[UsageRecord], size: int) -> list[Sequence[UsageRecord]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def _raw_rows(records: Sequence[UsageRecord]) -> list[list[Any]]:
    rows = []
    for r in records:
        values = list(field_values(r))
        values[FIELDS.index("dimensions")] = Jsonb(values[FIELDS.index("dimensions")])
        rows.append(values)
    return rows


RAW = "usage_raw"
"""The baselines' table: the ledger's columns and indexes, without its daily rollup's triggers."""


def _truncate(url: str, table: str = "usage") -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {table}")


def _sink(url: str, batches: Sequence[Sequence[UsageRecord]]) -> float:
    ledger = Ledger(url)
    try:
        ledger.send(batches[0][:1])  # the schema and the pool, outside the timing
        _truncate(url)
        began = time.perf_counter()
        for batch in batches:
            ledger.send(batch)
        return time.perf_counter() - began
    finally:
        ledger.close()


def _executemany(url: str, batches: Sequence[Sequence[UsageRecord]]) -> float:
    columns = ", ".join(f'"{c}"' for c in FIELDS)
    sql = f"INSERT INTO {RAW} ({columns}) VALUES ({', '.join(['%s'] * len(FIELDS))})"
    _truncate(url, RAW)
    with psycopg.connect(url, autocommit=True) as conn:
        began = time.perf_counter()
        for batch in batches:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, _raw_rows(batch))
        return time.perf_counter() - began


def _copy(url: str, batches: Sequence[Sequence[UsageRecord]]) -> float:
    columns = ", ".join(f'"{c}"' for c in FIELDS)
    _truncate(url, RAW)
    with psycopg.connect(url, autocommit=True) as conn:
        began = time.perf_counter()
        for batch in batches:
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY {RAW} ({columns}) FROM STDIN") as copy,
            ):
                for row in _raw_rows(batch):
                    copy.write_row(row)
        return time.perf_counter() - began


def _report_seconds(url: str, repeats: int) -> tuple[float, float, int]:
    """The best of ``repeats``: the server's grouping alone, and the whole report's rows; the groups."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE usage, usage_daily")
        server = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            list(ledger_pg.aggregate(conn, ("day", "customer"), None, None))
            server = min(server, time.perf_counter() - began)
    source = open_ledger(url)
    try:
        whole = float("inf")
        groups = 0
        for _ in range(repeats):
            began = time.perf_counter()
            groups = len(aggregate(source, ("day", "customer")))
            whole = min(whole, time.perf_counter() - began)
        return server, whole, groups
    finally:
        source.close()


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL database to write a scratch schema in")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000, help="records per send (the sink's max_batch)")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--schema", default="usagetap_bench")
    args = parser.parse_args(argv or sys.argv[1:])
    separator = "&" if "?" in args.url else "?"
    url = f"{args.url}{separator}options={quote(f'-csearch_path={args.schema}')}"
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{args.schema}"')
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            ledger_pg.ensure_schema(conn)
            conn.execute(f"CREATE TABLE {RAW} (LIKE usage INCLUDING ALL)")
        records = _records(args.rows, args.customers, args.days, seed=1)
        batches = _batches(records, args.batch)
        print(f"{args.rows:,} records in batches of {args.batch:,} into {ledger_pg.redact(args.url)}")
        for label, run in (("raw COPY", _copy), ("raw executemany", _executemany), ("Ledger sink", _sink)):
            seconds = run(url, batches)
            print(f"  {label:<16} {args.rows / seconds:>10,.0f} rows/s  ({seconds:.2f} s)")
        server, whole, groups = _report_seconds(url, repeats=3)
        print(
            f"  report --by day,customer: {whole * 1000:,.0f} ms ({server * 1000:,.0f} ms in PostgreSQL) "
            f"for {groups:,} groups over {args.rows:,} rows"
        )
    finally:
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
