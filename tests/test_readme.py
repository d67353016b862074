"""The README documents what users reach for (its short version; docs/ has the rest)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.examples_extras import install_line

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text("utf-8")
SINK_VARIABLES = (
    "API_KEY",
    "BASE_URL",
    "EVENT_NAME",
    "SPLIT_BY_TOKEN_TYPE",
    "CONCURRENCY",
    "SECRET",
    "METER",
)


@pytest.mark.parametrize("name", SINK_VARIABLES)
def test_sink_variables_are_written_with_their_prefix(name: str) -> None:
    assert f"`USAGETAP_{name}" in README
    assert not re.search(rf"(?<![A-Z_])`{name}[`=]", README), f"`{name}` is written without USAGETAP_"


def test_the_usage_section_documents_wrap_meter_current_run_and_response_id() -> None:
    assert "wrap(client, customer=None, dimensions=None, meter=None, provider=None)" in README
    assert "usagetap.current_run()" in README
    assert re.search(r"^\| `response_id` \|", README, re.MULTILINE)


def test_the_allow_policy_warning_is_documented_as_once_per_process() -> None:
    assert 'default `"allow"` policy usagetap logs one WARNING the first time per process' in README


def test_langchain_is_shown_metered_through_instrument() -> None:
    snippet = README[README.index("# LangChain") :]
    assert snippet.index("usagetap.instrument()") < snippet.index("ChatOpenAI(")


def test_each_example_is_listed_with_the_extras_its_install_line_names() -> None:
    rows = dict(
        re.findall(r"^\| `([\w.]+\.py)`(?:, `[\w.]+\.py`)? \|.*\| `usagetap\[([\w,-]+)\]`", README, re.M)
    )
    rows.update({"solvapay_sink.py": rows["spaire_sink.py"]})
    for example in sorted((ROOT / "examples").glob("*.py")):
        extras, _ = install_line(example)
        assert rows.get(example.name) == ",".join(extras), example.name
