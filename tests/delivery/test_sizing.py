"""The batch size a sink's backend takes, learned from its 413 answers."""

from __future__ import annotations

from usagetap.delivery.sizing import BatchSizes


def test_without_a_413_batches_go_at_the_configured_size() -> None:
    sizes = BatchSizes(500)
    sizes.was_taken(500)
    assert (sizes.lease_size(), sizes.safe_size()) == (500, 500)


def test_after_a_413_the_size_is_searched_between_the_largest_taken_and_the_smallest_refused() -> None:
    sizes = BatchSizes(500)
    sizes.was_refused(500)
    assert sizes.lease_size() == sizes.safe_size() == 250
    sizes.was_refused(250)
    sizes.was_taken(125)
    assert (sizes.safe_size(), sizes.lease_size()) == (125, 187)
    sizes.was_taken(187)
    sizes.was_refused(188)
    assert sizes.safe_size() == sizes.lease_size() == 187


def test_a_single_record_refused_as_too_large_teaches_nothing_about_batches() -> None:
    sizes = BatchSizes(500)
    sizes.was_refused(1)
    assert sizes.lease_size() == 500


def test_a_refusal_at_a_size_taken_before_forgets_that_size() -> None:
    sizes = BatchSizes(500)
    sizes.was_refused(400)
    sizes.was_taken(300)
    sizes.was_refused(300)
    assert sizes.safe_size() == 150


def test_a_batch_as_large_as_one_refused_is_known_too_large() -> None:
    sizes = BatchSizes(500)
    assert not sizes.known_too_large(500)
    sizes.was_refused(300)
    assert sizes.known_too_large(300) and not sizes.known_too_large(299)
