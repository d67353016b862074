from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from usagetap import InvalidRecord, UsageRecord
from usagetap._record import TOKEN_FIELDS, derive_event_id, new_event_id


def make(**overrides: object) -> UsageRecord:
    values: dict = {
        "event_id": "ev-1",
        "timestamp": datetime(2026, 11, 1, 12, tzinfo=timezone.utc),
        "customer": "org_1",
        "provider": "openai",
        "model": "gpt-4.1",
        "request_model": "gpt-4.1",
        "operation": "chat",
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_read_tokens": 40,
        "cache_write_tokens": 10,
        "reasoning_tokens": 5,
    }
    values.update(overrides)
    return UsageRecord(**values)


def test_well_formed_record_validates() -> None:
    record = make()
    assert record.validate() is record
    assert record.total_tokens == 120
    assert record.uncached_input_tokens == 50


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"])
def test_negative_token_count_is_rejected(field: str) -> None:
    with pytest.raises(InvalidRecord, match=f"{field} must be >= 0"):
        make(**{field: -1}).validate()


@pytest.mark.parametrize("value", [1.5, "10", None, True])
def test_non_integer_token_count_is_rejected(value: object) -> None:
    with pytest.raises(InvalidRecord, match="output_tokens must be an int"):
        make(output_tokens=value).validate()


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"])
@pytest.mark.parametrize("value", [10**12 + 1, 2**53, 2**63, 2**64])
def test_a_count_above_a_trillion_is_rejected(field: str, value: int) -> None:
    at_most = {"input_tokens": 10**12, "output_tokens": 10**12, "cache_write_tokens": 0}
    make(**{**at_most, field: 10**12}).validate()
    with pytest.raises(InvalidRecord, match=f"{field} must be <= 1000000000000, got {value}"):
        make(**{**at_most, field: value}).validate()


def test_cached_tokens_must_be_part_of_input() -> None:
    with pytest.raises(InvalidRecord, match="input_tokens must include cached tokens"):
        make(input_tokens=30, cache_read_tokens=40, cache_write_tokens=0).validate()


def test_reasoning_tokens_must_be_part_of_output() -> None:
    with pytest.raises(InvalidRecord, match="output_tokens must include reasoning"):
        make(output_tokens=3, reasoning_tokens=5).validate()


def test_naive_timestamp_and_bad_status_are_rejected() -> None:
    with pytest.raises(InvalidRecord, match="timezone-aware"):
        make(timestamp=datetime(2026, 1, 1)).validate()
    with pytest.raises(InvalidRecord, match="status"):
        make(status="done").validate()


def test_dimension_values_must_be_scalars() -> None:
    with pytest.raises(InvalidRecord, match="'tags'"):
        make(dimensions={"tags": ["a"]}).validate()


def test_dict_round_trip_keeps_every_field() -> None:
    record = make(
        cost=Decimal("0.0012345"), dimensions={"feature": "chat", "n": 2, "beta": True}, run_id="r1"
    )
    again = UsageRecord.from_dict(record.to_dict())
    assert again == record
    assert isinstance(again.cost, Decimal)


def test_event_id_derivation_is_stable_and_distinct() -> None:
    a = derive_event_id("openai", "chat", "chatcmpl-1")
    assert a == derive_event_id("openai", "chat", "chatcmpl-1")
    assert a != derive_event_id("openai", "chat", "chatcmpl-2")
    assert a != derive_event_id("azure", "chat", "chatcmpl-1")
    assert new_event_id() != new_event_id()


def test_event_ids_are_valid_uuids_of_the_right_version() -> None:
    import uuid

    from usagetap._record import _NAMESPACE

    derived = derive_event_id("openai", "chat", "chatcmpl-xyz")
    assert derived == str(uuid.uuid5(uuid.UUID(bytes=_NAMESPACE), "openai\x1fchat\x1fchatcmpl-xyz"))
    assert uuid.UUID(new_event_id()).version == 4


def test_dimensions_are_capped_in_name_length_value_length_and_count() -> None:
    from usagetap import _stats
    from usagetap._record import MAX_DIMENSION_KEY, MAX_DIMENSION_VALUE, MAX_DIMENSIONS, validate_dimensions

    given = {"k" * 500: "v", "big": "x" * 5_000_000, "n": 1.5}
    given.update({f"d{n}": n for n in range(MAX_DIMENSIONS)})
    out = validate_dimensions(given)
    assert len(out) == MAX_DIMENSIONS
    assert out["k" * MAX_DIMENSION_KEY] == "v" and out["big"] == "x" * MAX_DIMENSION_VALUE and out["n"] == 1.5
    assert _stats.snapshot()["dimensions_capped"] == 2 + 3  # a name, a value, three over the count


def test_dimensions_within_the_caps_are_kept_as_given() -> None:
    from usagetap import _stats
    from usagetap._record import validate_dimensions

    given = {"feature": "chat", "plan": "pro", "seats": 3, "beta": True}
    assert validate_dimensions(given) == given
    assert _stats.snapshot()["dimensions_capped"] == 0


def test_the_documented_dimension_caps() -> None:
    from usagetap._record import MAX_DIMENSION_KEY, MAX_DIMENSION_VALUE, MAX_DIMENSIONS

    assert (MAX_DIMENSIONS, MAX_DIMENSION_KEY, MAX_DIMENSION_VALUE) == (50, 64, 1000)


def test_every_field_has_a_kind_that_every_format_converts() -> None:
    from usagetap._record import FIELD_KINDS, FIELDS

    assert list(FIELD_KINDS) == list(FIELDS)
    assert {kind for kind, _ in FIELD_KINDS.values()} <= {"time", "decimal", "mapping", "count", "text"}
    assert all(FIELD_KINDS[name] == ("count", False) for name in TOKEN_FIELDS)


_ADD_FIELDS = """
import json, pathlib, shutil, sqlite3, sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import usagetap as installed
source = pathlib.Path(installed.__file__).parent
shutil.copytree(source, "pkg/usagetap", ignore=shutil.ignore_patterns("__pycache__"))
record_py = pathlib.Path("pkg/usagetap/_record.py")
anchor = "    price_issue: Optional[str] = None\\n"  # the last field: added fields are appended
text = record_py.read_text()
assert anchor in text
record_py.write_text(text.replace(
    anchor,
    anchor
    + "    session_id: Optional[str] = None\\n"
    + "    discount: Optional[Decimal] = None\\n"
    + "    seats: int = 0\\n",
))
for name in [m for m in sys.modules if m == "usagetap" or m.startswith("usagetap.")]:
    del sys.modules[name]
sys.path.insert(0, "pkg")

from usagetap.delivery.codec import decode_chunk, encode_chunk
from usagetap.db import ledger as ledger_db
from usagetap.sinks.http import payload
UsageRecord = sys.modules["usagetap._record"].UsageRecord
assert "session_id" in UsageRecord.__dataclass_fields__

r = UsageRecord(
    event_id="ev-7", timestamp=datetime(2026, 3, 4, 5, 6, tzinfo=timezone.utc), customer="org_9",
    provider="openai", model="gpt-x", request_model="gpt-x", operation="chat", input_tokens=9,
    output_tokens=3, cost=Decimal("0.25"), session_id="sess-1", discount=Decimal("0.05"), seats=4,
)
added = {"session_id": "sess-1", "discount": "0.05", "seats": 4}
out = {}
out["to_dict"] = {k: r.to_dict()[k] for k in added}
out["from_dict"] = UsageRecord.from_dict(r.to_dict()) == r
out["codec"] = decode_chunk(encode_chunk([r])) == [r]
conn = ledger_db.connect("ledger.db")
ledger_db.insert(conn, [r])
out["ledger_columns"] = [row[1] for row in conn.execute("PRAGMA table_info(usage)")][-3:]
out["ledger"] = list(ledger_db.iter_records(conn)) == [r]
event = json.loads(payload([r]))["events"][0]
out["wire"] = {k: event[k] for k in added}
print(json.dumps(out))
"""


def test_a_field_added_to_the_record_reaches_every_format(tmp_path: Path) -> None:
    """Add fields to a copy of record.py: to_dict, from_dict, the spool codec, the ledger and the
    HTTP wire carry them with no other edit."""
    import json

    from tests.helpers import run_script

    result = run_script(_ADD_FIELDS, tmp_path)
    assert result.returncode == 0, result.stderr
    added = {"session_id": "sess-1", "discount": "0.05", "seats": 4}
    assert json.loads(result.stdout) == {
        "to_dict": added,
        "from_dict": True,
        "codec": True,
        "ledger_columns": ["session_id", "discount", "seats"],
        "ledger": True,
        "wire": added,
    }
