"""The capture buffer and the counters: what the caller's thread touches, without locks."""

from __future__ import annotations

import threading

from usagetap import _stats
from usagetap.delivery.buffer import CaptureBuffer, estimate_bytes


def put_from_threads(buffer: CaptureBuffer, threads: int, per_thread: int) -> list[bool]:
    results: list[bool] = []
    start = threading.Barrier(threads)

    def run(k: int) -> None:
        start.wait()
        results.extend(bool(buffer.put((k, i))) for i in range(per_thread))

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def test_concurrent_puts_keep_every_item_once_and_in_order_per_thread() -> None:
    buffer = CaptureBuffer(max_items=100_000, max_bytes=1 << 40)
    taken: list[tuple[int, int]] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set() or len(buffer):
            taken.extend(buffer.take(500))

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert all(put_from_threads(buffer, threads=8, per_thread=5000))
    stop.set()
    consumer.join()
    assert sorted(taken) == [(k, i) for k in range(8) for i in range(5000)]
    for k in range(8):
        assert [i for t, i in taken if t == k] == list(range(5000))


def test_bounds_hold_for_one_thread_and_the_byte_count_is_right_after_draining() -> None:
    size = estimate_bytes(object())
    buffer = CaptureBuffer(max_items=10, max_bytes=4 * size)
    assert [buffer.put(i) for i in range(6)] == [1, 2, 3, 4, 0, 0]  # how many are queued; 0: dropped
    assert buffer.take(3) == [0, 1, 2]
    assert [buffer.put(i) for i in range(4, 8)] == [2, 3, 4, 0]
    assert buffer.take(100) == [3, 4, 5, 6]
    assert [buffer.put(i) for i in range(5)] == [1, 2, 3, 4, 0]


def test_concurrent_puts_overshoot_the_item_bound_by_at_most_one_per_thread() -> None:
    buffer = CaptureBuffer(max_items=1000, max_bytes=1 << 40)
    results = put_from_threads(buffer, threads=8, per_thread=1000)
    assert 1000 <= len(buffer) <= 1000 + 8
    assert results.count(True) == len(buffer)
    buffer.take(10_000)
    assert buffer.put("again")


def test_counts_of_every_thread_add_up_including_threads_that_ended() -> None:
    def count(n: int) -> None:
        for _ in range(n):
            _stats.incr("bench.test")
        _stats.incr("bench.batch", n)

    workers = [threading.Thread(target=count, args=(1000,)) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    count(5)
    counts = _stats.snapshot()
    assert counts["bench.test"] == 8005
    assert counts["bench.batch"] == 8005
    later = threading.Thread(target=count, args=(1,))  # a new thread folds the ended ones
    later.start()
    later.join()
    assert _stats.snapshot()["bench.test"] == 8006
    _stats.reset()
    assert "bench.test" not in _stats.snapshot()
