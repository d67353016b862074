"""Configured secrets never reach reprs, reasons, httpx's log or ``usagetap status``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import make_record
from usagetap.cli import main
from usagetap.delivery.backoff import Backoff
from usagetap.delivery.spool import open_spool
from usagetap.delivery.worker import SinkWorker
from usagetap.sinks import HTTP, OpenSpanner, Spaire, _redact
from usagetap.testing.backends import HTTPReceiver

TOKEN = "qtok-5f1e9a"
HEADER = "hdr-secret-77c2"
SHORT = "q1"


@pytest.fixture
def receiver() -> Iterator[HTTPReceiver]:
    with HTTPReceiver(secret="s3cret-value") as server:
        yield server


def sink_for(receiver: HTTPReceiver) -> HTTP:
    url = f"{receiver.endpoint}?token={TOKEN}&short={SHORT}"
    return HTTP(url, secret="s3cret-value", headers={"X-Auth-Token": HEADER})


def assert_clean(text: str) -> None:
    for secret in (TOKEN, HEADER, "s3cret-value", "pw-9d8c7b"):
        assert secret not in text


def test_the_repr_hides_the_urls_credentials_and_query_values() -> None:
    sink = HTTP(f"https://user:pw-9d8c7b@billing.example.com/usage?token={TOKEN}&short={SHORT}")
    shown = repr(sink)
    assert_clean(shown)
    assert f"={SHORT}" not in shown and "user" not in shown
    assert "billing.example.com/usage?token=[redacted]&short=[redacted]" in shown


def test_other_sinks_reprs_hide_credentials_in_their_base_url() -> None:
    spaire = Spaire("sk-live-0123456789", base_url=f"http://u:pw-9d8c7b@h.example/?k={TOKEN}")
    spanner = OpenSpanner("osk-0123456789", base_url=f"http://h.example/?k={TOKEN}")
    for sink in (spaire, spanner):
        assert_clean(repr(sink))
        assert "h.example" in repr(sink)


def test_httpx_request_log_shows_the_url_without_its_query_values(
    receiver: HTTPReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = sink_for(receiver)
    httpx_logger = logging.getLogger("httpx")  # only usagetap's filter (LiteLLM, if imported, adds its own)
    monkeypatch.setattr(httpx_logger, "filters", [f for f in httpx_logger.filters if f is _redact._filter])
    caplog.set_level(logging.INFO, logger="httpx")
    sink.send([make_record()])
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all(TOKEN not in line and f"short={SHORT}" not in line for line in lines)
    assert any(f"127.0.0.1:{receiver.port}/usage?token=[redacted]" in line for line in lines)


def test_httpx_request_log_formatted_by_an_earlier_filter_is_still_redacted(
    receiver: HTTPReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Formatting(logging.Filter):  # what LiteLLM's SecretRedactionFilter does to each httpx record
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg, record.args = record.getMessage(), ()
            return True

    sink = sink_for(receiver)
    httpx_logger = logging.getLogger("httpx")
    monkeypatch.setattr(httpx_logger, "filters", [Formatting(), *httpx_logger.filters])
    caplog.set_level(logging.INFO, logger="httpx")
    sink.send([make_record()])
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all(TOKEN not in line and f"short={SHORT}" not in line for line in lines)


def test_dead_letter_reasons_never_echo_the_token_or_a_custom_header(receiver: HTTPReceiver) -> None:
    receiver.reject(lambda event: f"no tenant for token {TOKEN} and header {HEADER}")
    record = make_record()
    outcomes = sink_for(receiver).send([record])
    reason = outcomes.dead[record.event_id]
    assert_clean(reason)
    assert reason == "http: rejected: no tenant for token [redacted] and header [redacted]"


def test_a_5xx_reason_names_the_status_and_host_and_never_the_header(receiver: HTTPReceiver) -> None:
    receiver.fail_next(503, body={"error": f"upstream refused header {HEADER}"})
    outcomes = sink_for(receiver).send([make_record()])
    assert outcomes.retry and outcomes.retry_reason is not None
    assert_clean(outcomes.retry_reason)
    assert "HTTP 503" in outcomes.retry_reason and f"127.0.0.1:{receiver.port}" in outcomes.retry_reason


def test_an_unreachable_backend_is_named_with_the_exception_without_the_url_token() -> None:
    sink = HTTP(f"http://127.0.0.1:9/usage?token={TOKEN}", timeout=5)
    outcomes = sink.send([make_record()])
    assert outcomes.retry_reason is not None
    assert_clean(outcomes.retry_reason)
    assert outcomes.retry_reason.startswith("http: no answer from 127.0.0.1:9: ConnectError")


def test_status_shows_why_events_wait_without_the_secret(receiver: HTTPReceiver, tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = open_spool(str(path), max_bytes=0, lease_seconds=60.0)
    receiver.fail_next(502, body={"error": f"bad gateway for {TOKEN}"})
    sink = sink_for(receiver)
    worker = SinkWorker(
        sink,
        sink.name,
        spool,
        batch_size=100,
        flush_interval=1.0,
        backoff=Backoff(initial=60.0, cap=60.0, jitter=0.0),
        on_batch_done=lambda: None,
    )
    spool.add([sink.name], [make_record()])
    worker.deliver_due()
    spool.close()
    out = status_json(path)
    [status] = out["sinks"]
    message = status["last_error"]["message"]
    assert_clean(json.dumps(out))
    assert "HTTP 502" in message and f"127.0.0.1:{receiver.port}" in message


def status_json(spool: Path) -> dict:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["status", "--spool", str(spool), "--format", "json"]) == 0
    return json.loads(buffer.getvalue())


def test_redact_url_replaces_user_info_and_every_query_value() -> None:
    from usagetap.sinks._redact import redact_url

    assert redact_url("https://a:b@h:8/p?x=1&y=&z") == "https://[redacted]@h:8/p?x=[redacted]&y=[redacted]&z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOi.x.y refused", "Authorization: Bearer [redacted] refused"),
        ("connect failed: api_key=k-12345678 at host", "connect failed: api_key=[redacted] at host"),
        ('{"password": "hunter2-long"}', '{"password": "[redacted]"}'),
        ("GET https://user:pw-9a8b7c@db.example.com/x", "GET https://[redacted]@db.example.com/x"),
        ("stripe said sk_live_abcdef123456", "stripe said [redacted]"),
    ],
)
def test_free_text_loses_labelled_credentials_user_info_and_key_like_tokens(text: str, expected: str) -> None:
    from usagetap.sinks._redact import Redactor

    assert Redactor().free_text(text) == expected


def test_free_text_also_loses_the_redactors_own_secrets() -> None:
    from usagetap.sinks._redact import Redactor

    assert Redactor([TOKEN]).free_text(f"refused {TOKEN} today") == "refused [redacted] today"
