"""``import usagetap`` stays light: SDKs, sinks, the delivery pipeline and its dependencies load on use."""

from __future__ import annotations

import subprocess
import sys

LAZY = (
    "openai",
    "anthropic",
    "httpx",
    "genai_prices",
    "tenacity",
    "wrapt",
    "rich",
    "asyncio",
    "logging",
    "sqlite3",
    "hashlib",
    "usagetap.delivery.pipeline",
    "usagetap._cost",
    "usagetap.sinks.ledger",
    "usagetap.sinks.http",
)


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_usagetap_loads_none_of_the_heavy_parts() -> None:
    assert loaded_after("import usagetap") & set(LAZY) == set()


def test_they_load_when_used() -> None:
    loaded = loaded_after(
        "import usagetap\n"
        "usagetap.configure(sink=usagetap.sinks.Memory())\n"
        "from usagetap.delivery import Pipeline\n"
        "assert Pipeline.__module__ == 'usagetap.delivery.pipeline'"
    )
    assert {"usagetap.delivery.pipeline", "usagetap._cost", "usagetap.sinks.memory"} <= loaded
