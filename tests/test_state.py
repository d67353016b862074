"""The process-wide state object, and the one ``reset()`` that makes it fresh."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

import usagetap
from usagetap import _log, _stats, limits, prices, publish
from usagetap._state import STATE, reset
from usagetap.instrument import instrument, instrumented
from usagetap.sinks import Memory


class _Consumer:
    def on_end(self, capture: Any) -> None:
        pass


def test_reset_restores_every_piece_of_state() -> None:
    usagetap.configure(sink=Memory(), exit_timeout=1.0, customer_policy="warn", flush_interval=0.5)
    limits.set("org_1", max_tokens=10)
    limits.set(lambda customer: None)
    limits.spent("org_1")
    prices.set("my-model", input_per_mtok=1, output_per_mtok=2)
    prices.markup(1.5)
    prices.set_fee("code_execution", unit_price="0.01")
    _log.log_once(_log.INFO, "a-key", "once")
    _stats.incr("captured")
    publish.register(_Consumer())
    instrument()
    STATE.open_streams[1] = object()
    with usagetap.track():
        pass
    assert instrumented() and STATE.pipeline is not None

    reset()

    assert STATE.pipeline is None and STATE.named == {} and STATE.exit_timeout == 5.0
    assert not STATE.started and not STATE.signals_installed
    assert STATE.customer_policy == "allow"
    assert STATE.limits == {} and STATE.limit_lookup is None and not STATE.limits_on
    assert STATE.accounts == {} and limits.get("org_1") == []
    assert STATE.price_overrides == {} and STATE.markups == {} and STATE.fee_overrides == {}
    assert STATE.logged_once == set()
    assert _stats.snapshot()["captured"] == 0
    assert STATE.consumers == (usagetap._runtime.DELIVERY, usagetap._spans.SPANS)
    assert not instrumented() and STATE.patched == {}
    assert STATE.open_streams == {}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
@pytest.mark.parametrize("module", [limits, prices], ids=["limits", "prices"])
def test_a_module_lock_held_at_fork_does_not_deadlock_the_child(module: Any) -> None:
    lock: threading.Lock = module._lock
    with lock:
        pid = os.fork()
        if pid == 0:  # the child: its lock must be a fresh one
            signal.alarm(20)  # a deadlock ends the child with SIGALRM instead of hanging the suite
            code = 1
            try:
                limits.set("org_fork", max_tokens=1)
                prices.set("fork-model", input_per_mtok=1, output_per_mtok=1)
                code = 0
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
