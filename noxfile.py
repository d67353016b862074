"""Sessions: tests, lint, the SDK version matrices (latest openai 1.x-3.x, anthropic 0.x-2.x, boto3 for
Bedrock, and the lowest declared version of each), bench."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

OPENAI = {"1": "openai>=1.40,<2", "2": "openai>=2,<3", "3": "openai>=3,<4"}
ANTHROPIC = {"0": "anthropic>=0.40,<1", "1": "anthropic>=1,<2", "2": "anthropic>=2,<3"}
# the lowest versions pyproject.toml declares, with what they need of their time's dependencies
OPENAI_LOWEST = [
    "openai==1.40.0",
    "httpx<0.28",
]  # openai < 1.55.3 passes httpx the proxies= that 0.28 removed
ANTHROPIC_LOWEST = ["anthropic[bedrock]==0.40.0"]  # boto3: Bedrock requests are SigV4-signed there
OPENAI_TESTS = ["tests/instrument", "tests/providers", "tests/test_cli.py"]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite with the latest SDKs."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and mypy --strict."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", "src", "tests", "bench", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "bench", "examples", "noxfile.py")
    session.run("mypy")


@nox.session
@nox.parametrize("major", list(OPENAI))
def openai(session: nox.Session, major: str) -> None:
    """The OpenAI tests against the latest release of one openai major version.

    Every surface test (tests/instrument/test_openai_surfaces.py: each billable
    call, sync and async, OpenAI and Azure) runs here; a surface missing from a
    version is skipped with a reason, which ``-rs`` prints.
    """
    _openai_tests(session, OPENAI[major])


@nox.session
def openai_lowest(session: nox.Session) -> None:
    """The OpenAI tests against the lowest openai version usagetap declares (``openai>=1.40``)."""
    _openai_tests(session, *OPENAI_LOWEST)


def _openai_tests(session: nox.Session, *requirements: str) -> None:
    session.install("-e", ".[test]", *requirements)
    session.run("python", "-c", "import openai; print('openai', openai.__version__)")
    session.run("python", "-m", "pytest", "-rs", *OPENAI_TESTS, *session.posargs)


@nox.session
@nox.parametrize("major", list(ANTHROPIC))
def anthropic(session: nox.Session, major: str) -> None:
    """The Anthropic tests against the latest release of one anthropic major version."""
    _anthropic_tests(session, ANTHROPIC[major])


@nox.session
def anthropic_lowest(session: nox.Session) -> None:
    """The Anthropic tests against the lowest anthropic version usagetap declares (``anthropic>=0.40``)."""
    _anthropic_tests(session, *ANTHROPIC_LOWEST)


def _anthropic_tests(session: nox.Session, *requirements: str) -> None:
    session.install("-e", ".[test]", *requirements)
    session.run("python", "-c", "import anthropic; print('anthropic', anthropic.__version__)")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/providers/anthropic",
        *sorted(str(p) for p in Path("tests/instrument").glob("test_anthropic_*.py")),
        "tests/instrument/test_instrument.py",
        "tests/instrument/test_manual_record.py",
        *session.posargs,
    )


BEDROCK_LOWEST = ["boto3==1.37.24", "botocore==1.37.24"]  # pyproject's bedrock extra
BEDROCK_TESTS = ["tests/providers/bedrock", "tests/providers/test_registry.py", "tests/test_examples.py"]


@nox.session
def bedrock(session: nox.Session) -> None:
    """The bedrock provider against the latest boto3."""
    _bedrock_tests(session, "boto3")


@nox.session
def bedrock_lowest(session: nox.Session) -> None:
    """The bedrock provider against the lowest boto3 the ``bedrock`` extra declares."""
    _bedrock_tests(session, *BEDROCK_LOWEST)


def _bedrock_tests(session: nox.Session, *requirements: str) -> None:
    session.install("-e", ".[test]", *requirements)
    session.run("python", "-c", "import boto3; print('boto3', boto3.__version__)")
    session.run("python", "-m", "pytest", "-rs", *BEDROCK_TESTS, *session.posargs)


MISTRAL = {"1": "mistralai>=1.2.5,<2", "2": "mistralai>=2,<3", "3": "mistralai>=3,<4"}
MISTRAL_LOWEST = ["mistralai==1.2.5"]  # the first 1.x whose streams close (EventStream)


@nox.session
@nox.parametrize("major", list(MISTRAL))
def mistral(session: nox.Session, major: str) -> None:
    """The Mistral tests against the latest release of one mistralai major version."""
    _mistral_tests(session, MISTRAL[major])


@nox.session
def mistral_lowest(session: nox.Session) -> None:
    """The Mistral tests against the lowest mistralai version usagetap declares (``mistralai>=1.2.5``)."""
    _mistral_tests(session, *MISTRAL_LOWEST)


def _mistral_tests(session: nox.Session, *requirements: str) -> None:
    session.install("-e", ".[test]", *requirements)
    session.run("python", "-c", "import importlib.metadata as m; print('mistralai', m.version('mistralai'))")
    session.run(
        "python",
        "-m",
        "pytest",
        "-rs",
        "tests/providers/mistral",
        "tests/providers/test_registry.py",
        *session.posargs,
    )


# quick sizes: a few minutes on 2 cores; ``nox -s bench -- full`` runs each script's defaults
QUICK = {
    "overhead.py": ["--calls", "100", "--warmup", "10"],
    "capture.py": ["--records", "5000"],
    "throughput.py": ["--events", "20000"],
    "memory.py": ["--records", "50000"],
    "importtime.py": ["--runs", "5"],
    "calls.py": ["--calls", "10"],
}


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks (bench/, see BENCHMARKS.md), quick versions; ``-- full`` for the published sizes.

    Peers (PostHog, Langfuse, OpenLLMetry) and profilers come from bench/requirements.txt,
    in this session's virtualenv only.
    """
    session.install("-e", ".[openai,anthropic,google,bedrock,mistral]", "-r", "bench/requirements.txt")
    full = "full" in session.posargs
    for script, quick in QUICK.items():
        session.run("python", f"bench/{script}", *([] if full else quick))


# google-genai: the Gemini API and Vertex AI (tests/providers/google)
GOOGLE_LOWEST = ["google-genai==1.10.0"]
GOOGLE_TESTS = ["tests/providers/google", "tests/providers/test_registry.py", "tests/test_examples.py"]


@nox.session
def google(session: nox.Session) -> None:
    """The google-genai tests against its latest release."""
    _google_tests(session, "google-genai")


@nox.session
def google_lowest(session: nox.Session) -> None:
    """The google-genai tests against the lowest version usagetap declares (``google-genai>=1.10``)."""
    _google_tests(session, *GOOGLE_LOWEST)


def _google_tests(session: nox.Session, *requirements: str) -> None:
    session.install("-e", ".[test]", *requirements)
    version = "from google.genai import version; print('google-genai', version.__version__)"
    session.run("python", "-c", version)
    session.run("python", "-m", "pytest", "-rs", *GOOGLE_TESTS, *session.posargs)


# -- agent frameworks (tests/integrations): each at its latest release, and at the lowest version
# its extra declares with what that version needs of its time (the SDK underneath as it resolves)
FRAMEWORKS = {
    "litellm": (["litellm"], ["litellm==1.100.0"], "tests/integrations/test_litellm.py"),
    "langchain": (
        ["langchain-openai", "langchain-anthropic"],
        ["langchain-core==0.3.0", "langchain-openai==0.2.0", "langchain-anthropic==0.2.0"],
        "tests/integrations/test_langchain.py",
    ),
    "agents": (
        ["openai-agents"],
        ["openai-agents==0.1.0", "openai==1.90.0"],
        "tests/integrations/test_agents.py",
    ),
    "pydantic_ai": (
        ["pydantic-ai-slim[openai,anthropic]"],
        [
            "pydantic-ai-slim[openai,anthropic]==1.0.0",
            "opentelemetry-api==1.36.0",
            "opentelemetry-sdk==1.36.0",
            "openai==1.107.0",
            "anthropic==0.67.0",
        ],
        "tests/integrations/test_pydantic_ai.py",
    ),
}


@nox.session
@nox.parametrize("framework", list(FRAMEWORKS))
def framework(session: nox.Session, framework: str) -> None:
    """One agent framework's tests against its latest release (the SDKs it needs resolved with it)."""
    latest, _, tests = FRAMEWORKS[framework]
    session.install("-e", ".[test]", *latest)
    session.run("python", "-m", "pytest", "-rs", tests, *session.posargs)


@nox.session
@nox.parametrize("framework", list(FRAMEWORKS))
def framework_lowest(session: nox.Session, framework: str) -> None:
    """One agent framework's tests against the lowest version usagetap's extra for it declares."""
    _, lowest, tests = FRAMEWORKS[framework]
    session.install("-e", ".[test]", *lowest)
    session.run("python", "-m", "pytest", "-rs", tests, *session.posargs)
