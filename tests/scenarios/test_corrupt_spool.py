"""A spool damaged between two runs: the next process delivers every record still readable, once,
and counts the rest.

Real processes: the first meters records while its backend is unreachable and exits with them
spooled; the test overwrites random pages of the spool file; the second starts with the backend up
and drains. The records at the backend are counted against the records made.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from usagetap.testing.backends import HTTPReceiver

RECORDS = 1500
PAGE = 4096
SECRET = "scenario-secret"

_METER = """
import json, sys
from datetime import datetime, timezone
import usagetap
from usagetap.delivery.intake import Capture
from usagetap.publish import publish
from usagetap._record import UsageRecord
from usagetap.sinks import HTTP


def deliver(record):
    publish(Capture.of(record.validate()))


url, spool, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
usagetap.configure(sink=HTTP(url, secret=sys.argv[4]), durability="spool", spool_path=spool,
                   batch_size=int(sys.argv[5]), flush_interval=0.05, exit_timeout=0.2)
now = datetime.now(timezone.utc)
for i in range(count):
    deliver(UsageRecord(
        event_id=f"ev-{i:05d}", timestamp=now, customer=f"org_{i % 7}", provider="openai",
        model="gpt-4.1-mini", request_model="gpt-4.1-mini", operation="chat",
        input_tokens=100 + i, output_tokens=20))
print(json.dumps({"pending": usagetap.flush(timeout=1.0).pending}), flush=True)
"""

_DRAIN = """
import json, sys
import usagetap
from usagetap.sinks import HTTP

usagetap.configure(sink=HTTP(sys.argv[1], secret=sys.argv[3]), durability="spool", spool_path=sys.argv[2],
                   batch_size=int(sys.argv[4]), flush_interval=0.05)
result = usagetap.flush(timeout=20.0)
print(json.dumps({"pending": result.pending, "stats": usagetap.stats()}), flush=True)
"""


def run(script: str, *args: str, cwd: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spooled(tmp_path: Path, batch: int) -> Path:
    """A spool left by a process that metered ``RECORDS`` records while its backend was down."""
    spool = tmp_path / "spool.db"
    url = f"http://127.0.0.1:{closed_port()}/usage"
    first = run(_METER, url, str(spool), str(RECORDS), SECRET, str(batch), cwd=tmp_path)
    assert first["pending"] == RECORDS, "the backend was down: everything is spooled"
    conn = sqlite3.connect(spool)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return spool


def drained(tmp_path: Path, spool: Path, batch: int) -> tuple[dict, set[str], list[str]]:
    """Drain ``spool`` in a second process with the backend up: its stats, the events the backend
    holds and every event id it was sent."""
    with HTTPReceiver(secret=SECRET) as backend:
        second = run(_DRAIN, backend.endpoint, str(spool), SECRET, str(batch), cwd=tmp_path)
        received = [e["event_id"] for r in backend.requests for e in r.json()["events"]]
    assert second["pending"] == 0
    return second["stats"], set(backend.events), received


def test_a_spool_damaged_between_runs_delivers_every_readable_record_once_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    spool = spooled(tmp_path, batch=1)
    pristine = spool.read_bytes()
    rng = random.Random(18)
    hit = set(rng.sample(range(2, len(pristine) // PAGE + 1), 5))  # the schema page aside
    with open(spool, "r+b") as f:
        for page in hit:
            f.seek((page - 1) * PAGE)
            f.write(rng.randbytes(PAGE))

    stats, delivered, received = drained(tmp_path, spool, batch=1)

    made = [f"ev-{i:05d}" for i in range(RECORDS)]
    intact = {e for e in made if (pristine.index(e.encode()) // PAGE + 1) not in hit}
    unreadable = stats.get("spool_unreadable", 0) + stats.get("spool_unreadable_rows", 0)
    print(
        f"one a row: made {RECORDS}, pages hit {sorted(hit)}, "
        f"delivered {len(delivered)}, unreadable {unreadable}"
    )
    assert len(received) == len(delivered), "every record delivered exactly once"
    assert delivered <= set(made)
    assert intact <= delivered, "every record on an intact page is delivered"
    assert stats["spool_salvaged"] == len(delivered)
    assert len(delivered) + unreadable == RECORDS, "what is not delivered is counted"
    assert any(".corrupt-" in p.name for p in os.scandir(tmp_path))


def test_a_spool_of_batches_damaged_by_2kb_overwrites_delivers_readable_records_once_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    spool = spooled(tmp_path, batch=100)
    size = spool.stat().st_size
    rng = random.Random(18)
    with open(spool, "r+b") as f:
        for _ in range(3):
            f.seek(rng.randrange(PAGE, size - 2048))
            f.write(rng.randbytes(2048))

    stats, delivered, received = drained(tmp_path, spool, batch=100)

    lost = stats.get("spool_unreadable", 0)
    rows = stats.get("spool_unreadable_rows", 0)
    print(
        f"rows of 100: made {RECORDS}, delivered {len(delivered)}, unreadable {lost} records and {rows} rows"
    )
    assert len(received) == len(delivered), "every record delivered exactly once"
    assert delivered <= {f"ev-{i:05d}" for i in range(RECORDS)}
    missing = RECORDS - len(delivered) - lost
    assert rows <= missing <= 100 * rows, "records not delivered are counted, or held by rows counted lost"
