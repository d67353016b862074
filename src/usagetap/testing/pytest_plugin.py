"""usagetap's pytest plugin (entry point ``pytest11``): fixtures and a marker for testing billing code.

Loaded by pytest wherever usagetap is installed, and inert until used: it configures nothing,
starts no thread and opens no port unless a test asks for one of its fixtures or its marker.

- ``usagetap_records``: a fresh :class:`~usagetap.sinks.Memory` sink (``recording()``); the
  configuration in effect before the test is restored after it. Call ``usagetap.flush()``
  before reading ``.records``.
- ``usagetap_provider``: a started :class:`~usagetap.testing.ProviderServer` answering OpenAI
  (``.openai_url``) and Anthropic (``.anthropic_url``) clients.
- ``usagetap_backend``: a loopback billing backend by name (:data:`BACKENDS`), either through
  indirect parametrization (``@pytest.mark.parametrize("usagetap_backend", ["stripe"],
  indirect=True)``) or, unparametrized, as a factory: ``usagetap_backend("spaire")``.
- ``@pytest.mark.usagetap_attributed``: the test fails if any usage it metered has no customer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..delivery.intake import Capture
    from ..sinks.memory import Memory
    from ._server import ProviderServer
    from .backends import LoopbackBackend

__all__ = [
    "BACKENDS",
    "MARKER",
    "usagetap_backend",
    "usagetap_provider",
    "usagetap_records",
]

MARKER = "usagetap_attributed"

BACKENDS = ("http", "open_spanner", "openmeter", "polar", "solvapay", "spaire", "stripe")
"""The names ``usagetap_backend`` takes: each loopback backend's ``name``."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: fail the test if usage it metered is not attributed to a customer (usagetap)"
    )


def backend(name: str) -> LoopbackBackend:
    """The loopback backend called ``name`` (not started)."""
    from . import backends

    classes: list[type[LoopbackBackend]] = [
        backends.HTTPReceiver,
        backends.OpenSpannerBackend,
        backends.OpenMeterBackend,
        backends.PolarBackend,
        backends.SolvaPayBackend,
        backends.SpaireBackend,
        backends.StripeBackend,
    ]
    for cls in classes:
        if cls.name == name:
            return cls()
    raise LookupError(f"no usagetap backend named {name!r}; one of {', '.join(BACKENDS)}")


@pytest.fixture
def usagetap_records() -> Iterator[Memory]:
    """A fresh memory sink for this test; the configuration before it is restored after it."""
    from . import recording

    with recording(flush_interval=0.02) as sink:
        yield sink


@pytest.fixture
def usagetap_provider() -> Iterator[ProviderServer]:
    """The loopback provider: OpenAI clients on ``.openai_url``, Anthropic clients on ``.anthropic_url``."""
    from ._server import ProviderServer

    with ProviderServer() as server:
        yield server


@pytest.fixture
def usagetap_backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A started loopback billing backend named by indirect parametrization, else a factory of them."""
    with ExitStack() as started:

        def start(name: str) -> LoopbackBackend:
            return started.enter_context(backend(name))  # type: ignore[no-any-return]

        name = getattr(request, "param", None)
        yield start if name is None else start(name)


class _Watch:
    """Every call published while the marked test runs (:mod:`usagetap.publish`)."""

    def __init__(self) -> None:
        self.captures: list[Capture] = []

    def on_end(self, capture: Capture) -> None:
        self.captures.append(capture)

    def unattributed(self) -> list[str]:
        """``provider model`` of each billed call that had no customer."""
        escaped = []
        for capture in self.captures:
            record = capture.record(price=False) if capture.customer is None else None
            if record is not None and record.customer is None:
                escaped.append(f"{record.provider} {record.model}")
        return escaped


_WATCHING = pytest.StashKey[_Watch]()


@pytest.hookimpl(trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under the marker, watch the calls the test makes (its fixtures are set up by now)."""
    if item.get_closest_marker(MARKER) is not None:
        from ..publish import register

        watch = item.stash[_WATCHING] = _Watch()
        register(watch)


@pytest.hookimpl(trylast=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """After a marked test passed, fail it if usage escaped with no customer."""
    watch = item.stash.get(_WATCHING, None)
    escaped = watch.unattributed() if watch is not None else []
    if escaped:
        pytest.fail(
            f"usagetap: {len(escaped)} call(s) metered with no customer in scope: {', '.join(escaped)}",
            pytrace=False,
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    watch = item.stash.get(_WATCHING, None)
    if watch is not None:
        from ..publish import unregister

        unregister(watch)
