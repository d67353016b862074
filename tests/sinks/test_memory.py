from tests.helpers import make_record
from usagetap.sinks import Memory


def test_memory_keeps_delivered_records_in_order() -> None:
    sink = Memory()
    a, b = make_record(), make_record()
    outcomes = sink.send([a, b])
    assert outcomes.delivered == [a.event_id, b.event_id]
    assert sink.records == [a, b]


def test_memory_dedupes_on_event_id_like_a_backend() -> None:
    sink = Memory()
    a = make_record()
    sink.send([a])
    outcomes = sink.send([a])
    assert outcomes.delivered == [a.event_id]
    assert outcomes.duplicates == 1
    assert sink.records == [a]
