"""The public surface is exactly the documented API."""

import usagetap
import usagetap.sinks

DOCUMENTED = {
    "BudgetExceeded",
    "ConfigurationError",
    "FlushResult",
    "InvalidRecord",
    "MissingCustomer",
    "Run",
    "UsageRecord",
    "UsagetapError",
    "__version__",
    "aflush",
    "configure",
    "current_run",
    "customer",
    "flush",
    "flushing",
    "instrument",
    "limits",
    "prices",
    "propagate",
    "record",
    "shutdown",
    "sinks",
    "stats",
    "track",
    "uninstrument",
    "wrap",
}


def test_all_is_exactly_the_documented_api() -> None:
    assert set(usagetap.__all__) == DOCUMENTED
    assert usagetap.__all__ == sorted(usagetap.__all__)


def test_every_exported_name_exists() -> None:
    for name in usagetap.__all__:
        assert hasattr(usagetap, name), name


def test_sinks_exports_resolve_lazily() -> None:
    assert usagetap.sinks.Memory().records == []
    assert {"Ledger", "Memory", "Sink", "Outcomes"} <= set(usagetap.sinks.__all__)
