"""Sink constructors fill the arguments they were not given from their ``USAGETAP_`` variables."""

from __future__ import annotations

import pytest

from tests.helpers import make_record
from tests.sinks.contract import drive
from usagetap import ConfigurationError
from usagetap.sinks import HTTP, OpenMeter, OpenSpanner, Polar, SolvaPay, Spaire, Stripe
from usagetap.testing.backends import (
    HTTPReceiver,
    OpenMeterBackend,
    OpenSpannerBackend,
    PolarBackend,
    SolvaPayBackend,
    SpaireBackend,
    StripeBackend,
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SINK", "API_KEY", "BASE_URL", "URL", "SECRET", "TIMEOUT", "ENSURE_METER"):
        monkeypatch.delenv(f"USAGETAP_{name}", raising=False)
    return monkeypatch


def test_spaire_without_arguments_sends_with_the_key_and_url_of_the_environment(env) -> None:  # type: ignore[no-untyped-def]
    with SpaireBackend() as backend:
        env.setenv("USAGETAP_API_KEY", backend.api_key)
        env.setenv("USAGETAP_BASE_URL", backend.url)
        env.setenv("USAGETAP_EVENT_NAME", "tokens.used")
        record = make_record(customer="org_env")
        assert drive(Spaire(), [record]).delivered == [record.event_id]
        assert [e["name"] for e in backend.events.values()] == ["tokens.used"]


def test_polar_reads_its_sandbox_switch(env) -> None:  # type: ignore[no-untyped-def]
    env.setenv("USAGETAP_API_KEY", "polar_oat_env_key")
    env.setenv("USAGETAP_SANDBOX", "1")
    assert Polar().base_url == Polar.sandbox_base_url


def test_polar_without_arguments_sends_with_the_key_of_the_environment(env) -> None:  # type: ignore[no-untyped-def]
    with PolarBackend() as backend:
        env.setenv("USAGETAP_API_KEY", backend.api_key)
        env.setenv("USAGETAP_BASE_URL", backend.url)
        record = make_record(customer="org_env")
        assert drive(Polar(), [record]).delivered == [record.event_id]


def test_open_spanner_without_arguments_reads_key_url_meter_and_dimensions(env) -> None:  # type: ignore[no-untyped-def]
    with OpenSpannerBackend() as backend:
        env.setenv("USAGETAP_API_KEY", backend.api_key)
        env.setenv("USAGETAP_BASE_URL", backend.url)
        env.setenv("USAGETAP_METER", "env_tokens")
        env.setenv("USAGETAP_DIMENSIONS", "feature")
        sink = OpenSpanner()
        sink.ensure_meter()
        record = make_record(customer="org_env", dimensions={"feature": "chat"})
        assert drive(sink, [record]).delivered == [record.event_id]
        assert [(e["meter"], e["metadata"]["feature"]) for e in backend.events.values()] == [
            ("env_tokens", "chat")
        ]


def test_open_spanner_with_ensure_meter_set_creates_the_meter_before_its_first_delivery(env) -> None:  # type: ignore[no-untyped-def]
    with OpenSpannerBackend() as backend:
        env.setenv("USAGETAP_API_KEY", backend.api_key)
        env.setenv("USAGETAP_BASE_URL", backend.url)
        env.setenv("USAGETAP_ENSURE_METER", "1")
        record = make_record(customer="org_env")
        result = drive(OpenSpanner(), [record])
        assert (result.delivered, result.halts) == ([record.event_id], [])
        assert "ai_tokens" in backend.meters and backend.contract_violations == []


def test_open_spanner_ensuring_its_meter_with_a_refused_key_halts_and_keeps_the_records(env) -> None:  # type: ignore[no-untyped-def]
    with OpenSpannerBackend() as backend:
        sink = OpenSpanner(api_key="osp_wrong_key", base_url=backend.url, ensure_meter=True)
        record = make_record(customer="org_env")
        result = drive(sink, [record])
        assert result.delivered == [] and result.dead == {}
        assert (
            len(result.halts) == 1 and "API key" in result.halts[0] and "osp_wrong_key" not in result.halts[0]
        )


def test_open_spanner_without_a_url_names_the_variable(env) -> None:  # type: ignore[no-untyped-def]
    env.setenv("USAGETAP_API_KEY", "osp_env_key")
    with pytest.raises(ConfigurationError, match="USAGETAP_BASE_URL"):
        OpenSpanner()


def test_solvapay_without_arguments_sends_with_the_key_and_product_of_the_environment(env) -> None:  # type: ignore[no-untyped-def]
    with SolvaPayBackend() as backend:
        env.setenv("USAGETAP_API_KEY", backend.api_key)
        env.setenv("USAGETAP_BASE_URL", backend.url)
        env.setenv("USAGETAP_PRODUCT_REF", "prd_env")
        record = make_record(customer="cus_ENV")
        assert drive(SolvaPay(), [record]).delivered == [record.event_id]
        assert {e["productRef"] for e in backend.events.values()} == {"prd_env"}


def test_openmeter_without_arguments_sends_with_the_key_and_source_of_the_environment(env) -> None:  # type: ignore[no-untyped-def]
    with OpenMeterBackend() as backend:
        env.setenv("USAGETAP_API_KEY", backend.api_key)
        env.setenv("USAGETAP_BASE_URL", backend.url)
        env.setenv("USAGETAP_SOURCE", "env-service")
        sink = OpenMeter()
        record = make_record(customer="org_env")
        assert drive(sink, [record]).delivered == [record.event_id]
        assert sink.source == "env-service"


def test_stripe_without_arguments_sends_with_the_key_and_concurrency_of_the_environment(env) -> None:  # type: ignore[no-untyped-def]
    with StripeBackend() as backend:
        env.setenv("USAGETAP_API_KEY", backend.api_key)
        env.setenv("USAGETAP_BASE_URL", backend.url)
        env.setenv("USAGETAP_CONCURRENCY", "2")
        sink = Stripe()
        record = make_record(customer="cus_env")
        assert drive(sink, [record]).delivered == [record.event_id]
        assert sink.concurrency == 2 and backend.totals() == {"cus_env": {"value": 120}}


def test_http_without_arguments_posts_signed_to_the_url_of_the_environment(env) -> None:  # type: ignore[no-untyped-def]
    with HTTPReceiver() as receiver:
        env.setenv("USAGETAP_URL", receiver.url + "/usage")
        env.setenv("USAGETAP_SECRET", receiver.secret)
        record = make_record(customer="org_env")
        assert drive(HTTP(), [record]).delivered == [record.event_id]
        assert set(receiver.totals()) == {"org_env"}


def test_http_sends_the_api_key_of_the_environment_as_a_bearer_token(env) -> None:  # type: ignore[no-untyped-def]
    env.setenv("USAGETAP_URL", "https://billing.example/usage")
    env.setenv("USAGETAP_API_KEY", "env-bearer-key")
    sink = HTTP()
    assert sink._endpoint.client().headers["authorization"] == "Bearer env-bearer-key"


def test_a_url_given_in_code_never_receives_the_key_of_the_environment(env) -> None:  # type: ignore[no-untyped-def]
    env.setenv("USAGETAP_API_KEY", "key-meant-for-another-backend")
    assert "authorization" not in HTTP("https://billing.example/usage")._endpoint.client().headers
    with pytest.raises(ConfigurationError, match="read from the environment together") as raised:
        OpenSpanner(base_url="https://meter.example")
    assert "key-meant-for-another-backend" not in str(raised.value)


def test_a_key_given_in_code_is_never_sent_to_the_url_of_the_environment(env) -> None:  # type: ignore[no-untyped-def]
    env.setenv("USAGETAP_BASE_URL", "https://meant-for-another-backend.example")
    assert Stripe(api_key="sk_code_key").base_url == Stripe.default_base_url


def test_with_usagetap_sink_naming_it_a_sink_given_its_url_reads_its_key(env) -> None:  # type: ignore[no-untyped-def]
    with OpenSpannerBackend() as backend:
        env.setenv("USAGETAP_SINK", "open_spanner")
        env.setenv("USAGETAP_API_KEY", backend.api_key)
        sink = OpenSpanner(base_url=backend.url)
        sink.ensure_meter()
        record = make_record(customer="org_env")
        assert drive(sink, [record]).delivered == [record.event_id]


def test_an_argument_given_wins_over_its_variable_and_the_others_still_come_from_theirs(env) -> None:  # type: ignore[no-untyped-def]
    env.setenv("USAGETAP_API_KEY", "env-key-0123456789")
    env.setenv("USAGETAP_EVENT_NAME", "from.env")
    env.setenv("USAGETAP_TIMEOUT", "9")
    sink = Spaire(event_name="from.code")
    assert sink.event_name == "from.code"
    client = sink._endpoint.client()
    assert (client.headers["authorization"], client.timeout.read) == ("Bearer env-key-0123456789", 9)
    assert Spaire(api_key="code-key-0123456789")._endpoint.client().headers["authorization"] == (
        "Bearer code-key-0123456789"
    )


def test_the_timeout_variable_applies_to_a_constructed_sink(env) -> None:  # type: ignore[no-untyped-def]
    env.setenv("USAGETAP_TIMEOUT", "4.5")
    sink = SolvaPay(api_key="sk_code_key")
    assert sink._endpoint.client().timeout.read == 4.5


def test_variables_meant_for_another_sink_are_not_read(env) -> None:  # type: ignore[no-untyped-def]
    env.setenv("USAGETAP_SINK", "open_spanner")
    env.setenv("USAGETAP_API_KEY", "osp_meant_for_spanner")
    env.setenv("USAGETAP_BASE_URL", "https://spanner.example")
    with pytest.raises(ConfigurationError, match="USAGETAP_SINK=open_spanner") as raised:
        Spaire()
    assert "osp_meant_for_spanner" not in str(raised.value)
    assert Spaire(api_key="spaire-code-key").base_url == Spaire.default_base_url


def test_a_missing_key_names_the_argument_and_the_variable(env) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError, match=r"api_key=\.\.\. or set USAGETAP_API_KEY"):
        Stripe()
