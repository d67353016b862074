"""Sinks from environment variables (``USAGETAP_SINK`` and friends)."""

from __future__ import annotations

from pathlib import Path

import pytest

from usagetap import ConfigurationError
from usagetap.sinks import HTTP, Ledger, OpenMeter, OpenSpanner, Polar, Sink, SolvaPay, Spaire, Stripe
from usagetap.sinks._env import SINKS, sink_from_env

KEY = "live-key-0123456789abcdef"


def test_no_sink_variable_means_no_sink() -> None:
    assert sink_from_env({}) is None
    assert sink_from_env({"USAGETAP_SINK": "  "}) is None


def test_the_ledger_reads_its_path() -> None:
    sink = sink_from_env({"USAGETAP_SINK": "ledger", "USAGETAP_DB": "/tmp/x/ledger.db"})
    assert isinstance(sink, Ledger) and sink.path == "/tmp/x/ledger.db"


def test_spaire_and_polar() -> None:
    spaire = sink_from_env(
        {
            "USAGETAP_SINK": "spaire",
            "USAGETAP_API_KEY": KEY,
            "USAGETAP_EVENT_NAME": "tokens",
            "USAGETAP_TIMEOUT": "5",
        }
    )
    assert isinstance(spaire, Spaire) and spaire.event_name == "tokens"
    assert spaire.base_url == "https://api.spairehq.com"
    polar = sink_from_env(
        {
            "USAGETAP_SINK": "Polar",
            "USAGETAP_API_KEY": KEY,
            "USAGETAP_SANDBOX": "true",
            "USAGETAP_CUSTOMER_FIELD": "customer_id",
        }
    )
    assert isinstance(polar, Polar) and polar.base_url == "https://sandbox-api.polar.sh"
    assert polar.customer_field == "customer_id"
    custom = sink_from_env(
        {"USAGETAP_SINK": "polar", "USAGETAP_API_KEY": KEY, "USAGETAP_BASE_URL": "http://h:1"}
    )
    assert isinstance(custom, Polar) and custom.base_url == "http://h:1"


def test_open_spanner_needs_its_url() -> None:
    with pytest.raises(ConfigurationError, match="USAGETAP_BASE_URL"):
        sink_from_env({"USAGETAP_SINK": "open_spanner", "USAGETAP_API_KEY": KEY})
    sink = sink_from_env(
        {
            "USAGETAP_SINK": "open-spanner",
            "USAGETAP_API_KEY": KEY,
            "USAGETAP_BASE_URL": "https://meter.example.com",
            "USAGETAP_METER": "tokens",
            "USAGETAP_SPLIT_BY_TOKEN_TYPE": "yes",
            "USAGETAP_DIMENSIONS": "feature, plan",
        }
    )
    assert isinstance(sink, OpenSpanner)
    assert (sink.meter, sink.split_by_token_type, sink.dimensions) == ("tokens", True, ("feature", "plan"))


def test_solvapay_openmeter_stripe_and_http() -> None:
    solvapay = sink_from_env(
        {"USAGETAP_SINK": "solvapay", "USAGETAP_API_KEY": KEY, "USAGETAP_PRODUCT_REF": "prd_1"}
    )
    assert isinstance(solvapay, SolvaPay) and solvapay.product_ref == "prd_1"
    openmeter = sink_from_env({"USAGETAP_SINK": "openmeter", "USAGETAP_BASE_URL": "http://om:8888"})
    assert isinstance(openmeter, OpenMeter) and openmeter.base_url == "http://om:8888"
    stripe = sink_from_env(
        {"USAGETAP_SINK": "stripe", "USAGETAP_API_KEY": "sk_test_abc", "USAGETAP_CONCURRENCY": "3"}
    )
    assert isinstance(stripe, Stripe) and stripe.concurrency == 3
    http = sink_from_env(
        {"USAGETAP_SINK": "http", "USAGETAP_URL": "https://b.example/usage", "USAGETAP_SECRET": "s"}
    )
    assert isinstance(http, HTTP) and http.url == "https://b.example/usage"


@pytest.mark.parametrize("kind", sorted(set(SINKS) - {"ledger", "http", "openmeter", "otel"}))
def test_a_missing_key_is_a_clear_error(kind: str) -> None:
    env = {"USAGETAP_SINK": kind, "USAGETAP_BASE_URL": "https://x.example"}
    with pytest.raises(ConfigurationError, match="USAGETAP_API_KEY"):
        sink_from_env(env)


@pytest.mark.parametrize(
    ("kind", "key", "message"),
    [
        ("stripe", "pk_live_0123456789", "publishable"),
        ("spaire", f"{KEY}\n", "whitespace"),
        ("solvapay", f"{KEY} extra", "whitespace"),
        ("polar", "kéy-0123456789", "non-ASCII"),
    ],
)
def test_a_wrong_key_is_a_clear_error_that_never_shows_the_key(kind: str, key: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        sink_from_env({"USAGETAP_SINK": kind, "USAGETAP_API_KEY": key})
    assert key.strip() not in str(caught.value) and "0123456789" not in str(caught.value)


def test_unknown_sinks_and_malformed_values_are_errors() -> None:
    with pytest.raises(ConfigurationError, match="not one of"):
        sink_from_env({"USAGETAP_SINK": "kafka"})
    with pytest.raises(ConfigurationError, match="true or false"):
        sink_from_env(
            {"USAGETAP_SINK": "stripe", "USAGETAP_API_KEY": "sk_x", "USAGETAP_SPLIT_BY_TOKEN_TYPE": "maybe"}
        )
    with pytest.raises(ConfigurationError, match="a number"):
        sink_from_env({"USAGETAP_SINK": "spaire", "USAGETAP_API_KEY": KEY, "USAGETAP_TIMEOUT": "soon"})
    with pytest.raises(ConfigurationError, match="USAGETAP_URL"):
        sink_from_env({"USAGETAP_SINK": "http"})


@pytest.mark.parametrize("kind", sorted(SINKS))
def test_every_sink_fits_the_sink_protocol_and_hides_its_key(kind: str, tmp_path: Path) -> None:
    env = {
        "USAGETAP_SINK": kind,
        "USAGETAP_API_KEY": "sk_test_" + KEY,
        "USAGETAP_BASE_URL": "https://x.example",
        "USAGETAP_DB": str(tmp_path / "l.db"),
    }
    sink = sink_from_env(env)
    assert isinstance(sink, Sink)
    assert sink.name == kind and isinstance(sink.max_batch, int) and sink.max_batch >= 1
    assert KEY not in repr(sink)
    sink.close()


def test_configure_without_a_sink_uses_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import usagetap
    from usagetap.sinks.spaire import Spaire

    monkeypatch.setenv("USAGETAP_SINK", "spaire")
    monkeypatch.setenv("USAGETAP_API_KEY", "spaire_sk_test")
    usagetap.configure()
    pipeline = usagetap._runtime.get_pipeline()
    assert [type(s) for s in pipeline.sinks] == [Spaire]
    assert pipeline.settings.durability == "spool"


def test_configure_refuses_a_missing_key_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    import usagetap

    monkeypatch.setenv("USAGETAP_SINK", "stripe")
    monkeypatch.delenv("USAGETAP_API_KEY", raising=False)
    with pytest.raises(usagetap.ConfigurationError, match="USAGETAP_API_KEY"):
        usagetap.configure()


def test_an_unconfigured_process_with_a_bad_environment_holds_records_for_the_named_sink(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import usagetap
    from usagetap import _runtime

    monkeypatch.setenv("USAGETAP_SINK", "stripe")
    monkeypatch.setenv("USAGETAP_API_KEY", "not-a-stripe-key-sk_live_abc")
    pipeline = _runtime.get_pipeline()
    assert [s.name for s in pipeline.sinks] == ["stripe"]
    assert pipeline.settings.durability == "spool"
    assert any(r.levelname == "ERROR" and "not delivered" in r.getMessage() for r in caplog.records)
    assert "sk_live_abc" not in caplog.text
    usagetap.shutdown()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5", "1e9"])
def test_a_timeout_that_is_not_a_sane_number_of_seconds_is_refused(value: str) -> None:
    env = {"USAGETAP_SINK": "http", "USAGETAP_URL": "https://b.example/usage", "USAGETAP_TIMEOUT": value}
    with pytest.raises(ConfigurationError, match="USAGETAP_TIMEOUT") as info:
        sink_from_env(env)
    assert "\n" not in str(info.value)


def test_a_blank_secret_is_refused_instead_of_building_an_unsigned_sink() -> None:
    env = {"USAGETAP_SINK": "http", "USAGETAP_URL": "https://b.example/usage", "USAGETAP_SECRET": " "}
    with pytest.raises(ConfigurationError, match="USAGETAP_SECRET"):
        sink_from_env(env)


@pytest.mark.parametrize("value", ["100000", "0", "-1"])
def test_a_concurrency_out_of_range_is_refused(value: str) -> None:
    env = {"USAGETAP_SINK": "stripe", "USAGETAP_API_KEY": "sk_test_abc", "USAGETAP_CONCURRENCY": value}
    with pytest.raises(ConfigurationError, match="USAGETAP_CONCURRENCY"):
        sink_from_env(env)


@pytest.mark.parametrize(
    "env",
    [
        {"USAGETAP_SINK": "nonsense"},
        {"USAGETAP_SINK": "spaire"},
        {"USAGETAP_SINK": "open_spanner", "USAGETAP_API_KEY": "os_key_123"},
    ],
    ids=["unknown-sink", "spaire-without-key", "open-spanner-without-base-url"],
)
def test_a_bad_environment_never_sends_records_to_the_ledger_and_flush_reports_them_pending(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import usagetap
    from tests.helpers import deliver, make_record

    monkeypatch.delenv("USAGETAP_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for _ in range(3):
        deliver(make_record())
    result = usagetap.flush(5.0)
    assert (result.sent, result.pending) == (0, 3)
    assert not result
    assert not (tmp_path / "ledger.db").exists()


def test_stats_flag_a_sink_the_environment_names_but_cannot_build(monkeypatch: pytest.MonkeyPatch) -> None:
    import usagetap
    from tests.helpers import deliver, make_record

    monkeypatch.setenv("USAGETAP_SINK", "spaire")
    monkeypatch.delenv("USAGETAP_API_KEY", raising=False)
    deliver(make_record())
    counts = usagetap.stats()
    assert (counts["misconfigured"], counts["halted"]) == (1, 1)


def test_the_placeholder_keys_its_records_as_the_real_sink_would(monkeypatch: pytest.MonkeyPatch) -> None:
    from usagetap.sinks._env import sink_name_from_env

    for kind in SINKS:
        env = {
            "USAGETAP_SINK": kind.upper().replace("_", "-"),
            "USAGETAP_API_KEY": "sk_test_" + KEY,
            "USAGETAP_BASE_URL": "https://x.example",
        }
        sink = sink_from_env(env)
        assert sink is not None and sink_name_from_env(env) == sink.name
        sink.close()


def test_configure_refuses_a_bad_environment_and_the_held_records_stay_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import usagetap
    from tests.helpers import deliver, make_record

    monkeypatch.setenv("USAGETAP_SINK", "spaire")
    monkeypatch.delenv("USAGETAP_API_KEY", raising=False)
    deliver(make_record())
    with pytest.raises(usagetap.ConfigurationError, match="USAGETAP_API_KEY"):
        usagetap.configure(customer_policy="warn")
    assert usagetap.flush(1.0).pending == 1
