"""Importing usagetap, or an integration module, imports no web or task framework."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_integration_modules_import_no_framework() -> None:
    code = (
        "import sys, usagetap, usagetap.integrations.asgi, usagetap.integrations.celery\n"
        "frameworks = ('starlette', 'fastapi', 'celery', 'kombu', 'django')\n"
        "print('loaded:', *sorted(m for m in frameworks if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "loaded:"


def test_litellm_integration_imports_litellm_only_when_its_callback_is_used() -> None:
    pytest.importorskip("litellm")  # the dev extra and the nox framework sessions install it
    code = (
        "import sys\n"
        "from usagetap.integrations import litellm as integration\n"
        "print('before:', 'litellm' in sys.modules)\n"
        "callback = integration.callback\n"
        "from litellm.integrations.custom_logger import CustomLogger\n"
        "print('after:', 'litellm' in sys.modules, isinstance(callback, CustomLogger))\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.split("\n")[:2] == ["before: False", "after: True True"]
