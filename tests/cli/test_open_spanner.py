"""``usagetap open-spanner ensure-meter`` against the loopback Open Spanner."""

from __future__ import annotations

import json

import pytest

from usagetap.cli import main
from usagetap.testing.backends import OpenSpannerBackend


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SINK", "API_KEY", "BASE_URL", "METER", "DIMENSIONS"):
        monkeypatch.delenv(f"USAGETAP_{name}", raising=False)
    return monkeypatch


def test_ensure_meter_creates_the_meter_the_environment_describes_and_prints_it(env, capsys) -> None:  # type: ignore[no-untyped-def]
    with OpenSpannerBackend() as backend:
        env.setenv("USAGETAP_API_KEY", backend.api_key)
        env.setenv("USAGETAP_BASE_URL", backend.url)
        env.setenv("USAGETAP_DIMENSIONS", "feature")
        assert main(["open-spanner", "ensure-meter", "--meter", "llm_tokens"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["name"] == "llm_tokens" and set(backend.meters) == {"llm_tokens"}
        assert "feature" in {d["name"] for d in printed["dimensions"]}
        assert backend.contract_violations == []


def test_ensure_meter_twice_keeps_one_meter(env, capsys) -> None:  # type: ignore[no-untyped-def]
    with OpenSpannerBackend() as backend:
        env.setenv("USAGETAP_API_KEY", backend.api_key)
        env.setenv("USAGETAP_BASE_URL", backend.url)
        assert main(["open-spanner", "ensure-meter"]) == 0
        first = json.loads(capsys.readouterr().out)
        assert main(["open-spanner", "ensure-meter"]) == 0
        assert json.loads(capsys.readouterr().out)["id"] == first["id"]
        assert list(backend.meters) == ["ai_tokens"]


def test_ensure_meter_with_a_refused_key_is_one_line_without_the_key(env, capsys) -> None:  # type: ignore[no-untyped-def]
    with OpenSpannerBackend() as backend:
        env.setenv("USAGETAP_API_KEY", "osp_refused_key")
        env.setenv("USAGETAP_BASE_URL", backend.url)
        assert main(["open-spanner", "ensure-meter"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "API key" in err and "osp_refused_key" not in err


def test_ensure_meter_without_a_url_names_the_variable(env, capsys) -> None:  # type: ignore[no-untyped-def]
    env.setenv("USAGETAP_API_KEY", "osp_some_key")
    assert main(["open-spanner", "ensure-meter"]) == 1
    assert "USAGETAP_BASE_URL" in capsys.readouterr().err
