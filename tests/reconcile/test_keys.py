"""A record's key hint names a listed key when their heads and tails agree, whatever their lengths."""

from __future__ import annotations

from usagetap.reconcile._keys import compatible, resolve


def test_a_shorter_recorded_hint_matches_the_providers_longer_redacted_value() -> None:
    assert compatible("sk-proj-...wXyZ", "sk-pro...XyZ")


def test_hints_whose_tails_differ_do_not_match() -> None:
    assert not compatible("sk-proj-...wXyZ", "sk-pro...XyA")


def test_hints_whose_heads_differ_do_not_match() -> None:
    assert not compatible("sk-ant-api03-Hq7...cdAA", "sk-ant-api03-Hq8...cdAA")


def test_a_listed_key_with_an_empty_hint_matches_nothing() -> None:
    assert not compatible("sk-...abcd", "...")


def test_a_hint_two_listed_keys_fit_resolves_to_no_key() -> None:
    keys = {"key_a": "sk-abc...bcd", "key_b": "sk-xyz...bcd", "key_c": "sk-abc...999"}
    assert resolve(["sk-...abcd", "sk-...9999"], keys) == {"sk-...abcd": None, "sk-...9999": "key_c"}
