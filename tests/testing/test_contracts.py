"""The contracts ``usagetap.testing`` ships are cut from the backends' full documents, kept in tests/."""

from __future__ import annotations

import json
from pathlib import Path

from tests.testing.contract_subset import subset
from usagetap.testing.backends.open_spanner import load_contract

FULL = Path(__file__).parent.parent / "fixtures" / "contracts" / "open-spanner.openapi.json"


def test_the_shipped_open_spanner_contract_is_the_full_document_cut_to_the_routes_served() -> None:
    full = json.loads(FULL.read_text("utf-8"))
    assert load_contract() == subset(full, ["/v1/meters", "/v1/usages/bulk"])
