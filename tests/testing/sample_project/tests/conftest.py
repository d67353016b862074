"""Which usagetap this session tests (the installed one), in the report header."""

import usagetap


def pytest_report_header() -> str:
    return f"usagetap under test: {usagetap.__file__}"
