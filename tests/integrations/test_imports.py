"""Importing usagetap, or an integration module, imports no web or task framework."""

from __future__ import annotations

import subprocess
import sys


def test_integration_modules_import_no_framework() -> None:
    code = (
        "import sys, usagetap, usagetap.integrations.asgi, usagetap.integrations.celery\n"
        "frameworks = ('starlette', 'fastapi', 'celery', 'kombu', 'django')\n"
        "print('loaded:', *sorted(m for m in frameworks if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "loaded:"
