"""The pytest plugin's backend names (its fixtures run in the sample project's own session)."""

from __future__ import annotations

import pytest

from usagetap.testing import backends
from usagetap.testing.pytest_plugin import BACKENDS, backend


def test_every_loopback_backend_is_offered_under_its_name() -> None:
    classes = [
        c for c in vars(backends).values() if isinstance(c, type) and issubclass(c, backends.LoopbackBackend)
    ]
    names = {cls.name for cls in classes if cls is not backends.LoopbackBackend}
    assert set(BACKENDS) == names == {backend(name).name for name in BACKENDS}


def test_an_unknown_backend_name_lists_the_known_ones() -> None:
    with pytest.raises(LookupError, match=r"'stripes'.*open_spanner"):
        backend("stripes")
