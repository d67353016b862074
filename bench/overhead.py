"""Call overhead: an instrumented vs a bare client, usagetap and its peers, in one run.

Method: the loopback provider (``bench/_provider.py``: the wire formats of
``usagetap.testing``, pre-encoded) runs in its own process. Each subject runs
in a fresh child process (the peers patch the SDK globally, so they must not
meet): per mode, single calls alternate between the bare and the instrumented
client (the order flips every iteration), after a warm-up; the figure is the
ratio of the median wall-clock times, with a bootstrap 95% interval, and the
median time added per call. For peers that patch globally (Langfuse,
OpenLLMetry), the bare side calls the SDK methods saved before the patch.

Modes: non-streaming chat; a 200-token chat stream (202 chunks; 203 when usage
is asked for); a 200-token Responses stream (208 events); a 200-token Anthropic
Messages stream (205 events); and a 48-token one (53 events, as the loopback
server's default cap made it in earlier runs). The providers of their own SDKs, each one reply
(20 tokens) and a 200-token stream: ``gemini`` / ``gemini-stream`` (google-genai
``models.generate_content[_stream]``, 201 chunks), ``bedrock`` / ``bedrock-stream`` (boto3
``converse`` / ``converse_stream``, 204 events), ``mistral`` / ``mistral-stream`` (mistralai
``chat.complete`` / ``chat.stream``, 202 chunks). A mode whose SDK is not installed, or that a
peer does not support, is listed with the reason.

Subjects (each records what a real deployment would, exported over loopback):

- ``usagetap``: ``usagetap.wrap(client)``, default configuration (records to
  the local SQLite ledger in a temporary directory), inside ``usagetap.customer()``;
- ``posthog``: ``posthog.ai.openai.OpenAI`` / ``posthog.ai.anthropic.Anthropic`` with a
  ``Posthog`` client batching events to the loopback server's ``/batch/``;
- ``langfuse``: ``from langfuse.openai import openai`` with a ``Langfuse`` client exporting
  its OTLP spans to the loopback server;
- ``openllmetry``: ``OpenAIInstrumentor().instrument()`` with an OpenTelemetry SDK
  ``TracerProvider`` + ``BatchSpanProcessor`` + OTLP/HTTP exporter to the loopback server.

    python bench/overhead.py [--calls 1000] [--warmup 50] [--subjects usagetap,posthog,langfuse,openllmetry]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from _common import machine, provider_process

MESSAGES: Any = [{"role": "user", "content": "Say something about metering in twenty words"}]
MODES = (
    "chat",
    "chat-stream",
    "responses-stream",
    "anthropic-stream",
    "anthropic-stream-48",
    "gemini",
    "gemini-stream",
    "bedrock",
    "bedrock-stream",
    "mistral",
    "mistral-stream",
)
GEMINI_MODEL = "gemini-2.5-flash"
BEDROCK_MODEL = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
MISTRAL_MODEL = "mistral-large-latest"
UNSUPPORTED = {
    "posthog": {
        "bedrock": "posthog.ai has no Bedrock (boto3) wrapper",
        "mistral": "posthog.ai has no Mistral wrapper",
    },
    "langfuse": dict.fromkeys(
        ("gemini", "bedrock", "mistral"),
        "langfuse wraps only the openai SDK (others go through OpenTelemetry instrumentations)",
    ),
    "openllmetry": {
        family: f"needs opentelemetry-instrumentation-{package}, not in bench/requirements.txt"
        for family, package in (
            ("gemini", "google-generativeai"),
            ("bedrock", "bedrock"),
            ("mistral", "mistralai"),
        )
    },
}
"""Why a peer has no figure for a provider's modes (``gemini``, ``gemini-stream``: ``gemini``)."""
SUBJECTS = ("usagetap", "posthog", "langfuse", "openllmetry")
SKIPPED: dict[str, str] = {}
"""Modes a subject's setup could not make, and why (an SDK not installed)."""
CUSTOMER = "org_bench"

Call = Callable[[], None]


# -- the calls ---------------------------------------------------------------------


def openai_calls(chat: Callable[..., Any], respond: Callable[..., Any], **extra: Any) -> dict[str, Call]:
    """The OpenAI modes through ``chat`` (chat.completions.create) and ``respond`` (responses.create)."""

    def chat_call() -> None:
        chat(model="gpt-4.1", messages=MESSAGES, max_tokens=20, **extra)

    def chat_stream() -> None:
        for _ in chat(model="gpt-4.1", messages=MESSAGES, max_tokens=200, stream=True, **extra):
            pass

    def responses_stream() -> None:
        stream = respond(
            model="gpt-4.1", input=MESSAGES, max_output_tokens=200, stream=True, store=False, **extra
        )
        for _ in stream:
            pass

    return {"chat": chat_call, "chat-stream": chat_stream, "responses-stream": responses_stream}


def anthropic_calls(create: Callable[..., Any], **extra: Any) -> dict[str, Call]:
    """The Anthropic modes through ``create`` (messages.create): a 200-token and a 48-token stream."""

    def stream(tokens: int) -> Call:
        def call() -> None:
            for _ in create(
                model="claude-sonnet-4-6", messages=MESSAGES, max_tokens=tokens, stream=True, **extra
            ):
                pass

        return call

    return {"anthropic-stream": stream(200), "anthropic-stream-48": stream(48)}


def gemini_calls(client: Any) -> dict[str, Call]:
    """The Gemini modes through a ``genai.Client``: one reply and a 200-token stream.

    The calls hold the client itself (a ``genai.Client`` closes its HTTP client when collected).
    """
    from google.genai import types

    short = types.GenerateContentConfig(max_output_tokens=20)
    long = types.GenerateContentConfig(max_output_tokens=200)
    prompt = MESSAGES[0]["content"]

    def call() -> None:
        client.models.generate_content(model=GEMINI_MODEL, contents=prompt, config=short)

    def stream() -> None:
        for _ in client.models.generate_content_stream(model=GEMINI_MODEL, contents=prompt, config=long):
            pass

    return {"gemini": call, "gemini-stream": stream}


def bedrock_calls(client: Any) -> dict[str, Call]:
    """The Bedrock modes through a boto3 ``bedrock-runtime`` client: Converse, a 200-token ConverseStream."""
    messages = [{"role": "user", "content": [{"text": MESSAGES[0]["content"]}]}]

    def call() -> None:
        client.converse(modelId=BEDROCK_MODEL, messages=messages, inferenceConfig={"maxTokens": 20})

    def stream() -> None:
        reply = client.converse_stream(
            modelId=BEDROCK_MODEL, messages=messages, inferenceConfig={"maxTokens": 200}
        )
        for _ in reply["stream"]:
            pass

    return {"bedrock": call, "bedrock-stream": stream}


def mistral_calls(client: Any) -> dict[str, Call]:
    """The Mistral modes through a ``Mistral`` client: one chat completion and a 200-token stream."""

    def call() -> None:
        client.chat.complete(model=MISTRAL_MODEL, messages=MESSAGES, max_tokens=20)

    def stream() -> None:
        for _ in client.chat.stream(model=MISTRAL_MODEL, messages=MESSAGES, max_tokens=200):
            pass

    return {"mistral": call, "mistral-stream": stream}


FAMILY_MODES = {
    "google": ("gemini", "gemini-stream"),
    "bedrock": ("bedrock", "bedrock-stream"),
    "mistral": ("mistral", "mistral-stream"),
}
"""The modes of each new provider family (its SDK is an optional extra: google, bedrock, mistral)."""


def new_provider_clients(url: str, http: Callable[[str], Any] = lambda family: None) -> dict[str, Any]:
    """Factories of the Gemini, Bedrock and Mistral clients against the loopback provider at ``url``.

    ``http(family)``: the HTTP client a client of that family gets (None: the SDK's own). A factory
    imports its SDK when called (ImportError when it is not installed).
    """

    def gemini() -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=url, httpx_client=http("google"))
        return genai.Client(api_key="bench", http_options=options)

    def bedrock() -> Any:
        import boto3

        return boto3.client(
            "bedrock-runtime",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )

    def mistral() -> Any:
        try:
            from mistralai.client import Mistral  # mistralai 2.x, 3.x
        except ImportError:  # mistralai 1.x
            from mistralai import Mistral  # type: ignore[attr-defined,no-redef]

        return Mistral(api_key="bench", server_url=f"{url}/mistral", client=http("mistral"))

    return {"google": gemini, "bedrock": bedrock, "mistral": mistral}


def new_provider_pairs(
    url: str,
    modes: list[str],
    wrap: Callable[[Any, str], Any],
    http: Callable[[str], Any] = lambda family: None,
    prepare: Callable[[Any, str], Any] = lambda client, family: client,
) -> tuple[dict[str, tuple[Call, Call]], dict[str, str]]:
    """Bare and ``wrap(client, family)``-ed calls of the requested new-provider modes, and why any
    requested mode has none (its SDK is not installed). ``prepare(client, family)``: each client made,
    before it is wrapped."""
    pairs: dict[str, tuple[Call, Call]] = {}
    skipped: dict[str, str] = {}
    for family, make in new_provider_clients(url, http).items():
        wanted = [mode for mode in FAMILY_MODES[family] if mode in modes]
        if not wanted:
            continue
        try:
            bare, wrapped = prepare(make(), family), wrap(prepare(make(), family), family)
        except ImportError as exc:
            skipped.update(dict.fromkeys(wanted, f"{exc.name} not installed (usagetap[{family}])"))
            continue
        pairs.update(pair(new_provider_calls(bare, family), new_provider_calls(wrapped, family)))
    return pairs, skipped


def new_provider_calls(client: Any, family: str) -> dict[str, Call]:
    """The modes of ``family`` (``google``, ``bedrock``, ``mistral``) through ``client``."""
    if family == "google":
        return gemini_calls(client)
    if family == "bedrock":
        return bedrock_calls(client)
    return mistral_calls(client)


def originals() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``Completions.create`` and ``Responses.create`` as the SDK defines them (before any patch)."""
    from openai.resources.chat.completions import Completions
    from openai.resources.responses import Responses

    return Completions.create, Responses.create


def unpatched(client: Any, saved: tuple[Callable[..., Any], Callable[..., Any]]) -> dict[str, Call]:
    chat, respond = saved
    return openai_calls(
        functools.partial(chat, client.chat.completions), functools.partial(respond, client.responses)
    )


# -- subjects (run in a child process each) ------------------------------------------


def setup_usagetap(url: str, modes: list[str]) -> tuple[dict[str, tuple[Call, Call]], Callable[[], str], str]:
    import anthropic
    import openai

    import usagetap

    def oai() -> Any:
        return openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0)

    def claude() -> Any:
        return anthropic.Anthropic(base_url=url, api_key="bench", max_retries=0)

    bare, wrapped = oai(), usagetap.wrap(oai(), provider="openai")
    pairs = pair(
        openai_calls(bare.chat.completions.create, bare.responses.create),
        openai_calls(wrapped.chat.completions.create, wrapped.responses.create),
    )
    pairs.update(
        pair(
            anthropic_calls(claude().messages.create),
            anthropic_calls(usagetap.wrap(claude(), provider="anthropic").messages.create),
        )
    )
    added, skipped = new_provider_pairs(
        url, modes, lambda client, family: usagetap.wrap(client, provider=family)
    )
    pairs.update(added)
    SKIPPED.update(skipped)
    usagetap.customer(CUSTOMER).__enter__()

    def evidence() -> str:
        result = usagetap.flush(timeout=60)
        counts = usagetap.stats()
        return f"{counts.get('captured', 0)} records captured, {result.pending} undelivered"

    return pairs, evidence, "usagetap.wrap(client), default configuration (local SQLite ledger)"


def setup_posthog(url: str, modes: list[str]) -> tuple[dict[str, tuple[Call, Call]], Callable[[], str], str]:
    import anthropic
    import openai
    from posthog import Posthog
    from posthog.ai.anthropic import Anthropic as PostHogAnthropic
    from posthog.ai.openai import OpenAI as PostHogOpenAI

    captured = [0]

    def count(event: Any) -> Any:
        captured[0] += 1
        return event

    ph = Posthog("phc_bench", host=url, before_send=count, disable_geoip=True)
    bare = openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0)
    wrapped = PostHogOpenAI(posthog_client=ph, base_url=f"{url}/v1", api_key="bench", max_retries=0)
    pairs = pair(
        openai_calls(bare.chat.completions.create, bare.responses.create),
        openai_calls(wrapped.chat.completions.create, wrapped.responses.create, posthog_distinct_id=CUSTOMER),
    )
    claude = PostHogAnthropic(posthog_client=ph, base_url=url, api_key="bench", max_retries=0)
    pairs.update(
        pair(
            anthropic_calls(
                anthropic.Anthropic(base_url=url, api_key="bench", max_retries=0).messages.create
            ),
            anthropic_calls(claude.messages.create, posthog_distinct_id=CUSTOMER),
        )
    )

    if any(mode in modes for mode in FAMILY_MODES["google"]):
        try:
            from google import genai
            from google.genai import types
            from posthog.ai.gemini import Client as PostHogGemini
        except ImportError as exc:
            SKIPPED.update(dict.fromkeys(FAMILY_MODES["google"], f"{exc.name} not installed"))
        else:
            options = types.HttpOptions(base_url=url)
            gemini = PostHogGemini(
                api_key="bench", http_options=options, posthog_client=ph, posthog_distinct_id=CUSTOMER
            )
            pairs.update(
                pair(gemini_calls(genai.Client(api_key="bench", http_options=options)), gemini_calls(gemini))
            )

    def evidence() -> str:
        ph.flush()
        return f"{captured[0]} events captured; sink: {sinks(url)}"

    return (
        pairs,
        evidence,
        "posthog.ai.openai.OpenAI / .anthropic.Anthropic / .gemini.Client, Posthog client batching to "
        "loopback",
    )


def setup_langfuse(url: str, modes: list[str]) -> tuple[dict[str, tuple[Call, Call]], Callable[[], str], str]:
    saved = originals()
    from langfuse import Langfuse

    langfuse = Langfuse(public_key="pk-lf-bench", secret_key="sk-lf-bench", host=url)
    from langfuse.openai import openai as lf_openai

    client = lf_openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0)
    pairs = pair(
        unpatched(client, saved), openai_calls(client.chat.completions.create, client.responses.create)
    )

    def evidence() -> str:
        langfuse.flush()
        return f"sink: {sinks(url)}"

    return pairs, evidence, "from langfuse.openai import openai; Langfuse client exporting OTLP to loopback"


def setup_openllmetry(
    url: str, modes: list[str]
) -> tuple[dict[str, tuple[Call, Call]], Callable[[], str], str]:
    saved = originals()
    import openai
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    trace.set_tracer_provider(provider)
    OpenAIInstrumentor().instrument()
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0)
    pairs = pair(
        unpatched(client, saved), openai_calls(client.chat.completions.create, client.responses.create)
    )

    def evidence() -> str:
        provider.force_flush()
        return f"sink: {sinks(url)}"

    return (
        pairs,
        evidence,
        "OpenAIInstrumentor().instrument(), OTel SDK BatchSpanProcessor + OTLP/HTTP to loopback",
    )


SETUPS = {
    "usagetap": setup_usagetap,
    "posthog": setup_posthog,
    "langfuse": setup_langfuse,
    "openllmetry": setup_openllmetry,
}


def pair(bare: dict[str, Call], instrumented: dict[str, Call]) -> dict[str, tuple[Call, Call]]:
    return {mode: (bare[mode], instrumented[mode]) for mode in bare}


def sinks(url: str, reset: bool = False) -> str:
    """What reached the loopback server's catch-all (the peers' telemetry), since the last reset."""
    with urllib.request.urlopen(f"{url}/__bench/sinks{'?reset' if reset else ''}") as response:
        seen = json.loads(response.read())
    return (
        ", ".join(f"{path} {n} requests {size // 1024} KiB" for path, (n, size) in seen.items()) or "nothing"
    )


def measure(bare: Call, instrumented: Call, calls: int, warmup: int) -> tuple[list[float], list[float]]:
    times: tuple[list[float], list[float]] = ([], [])
    both = (bare, instrumented)
    clock = time.perf_counter
    for i in range(warmup + calls):
        for side in (0, 1) if i % 2 == 0 else (1, 0):
            started = clock()
            both[side]()
            elapsed = clock() - started
            if i >= warmup:
                times[side].append(elapsed)
    return times


def worker(subject: str, url: str, calls: int, warmup: int, modes: list[str]) -> None:
    os.chdir(tempfile.mkdtemp(prefix=f"usagetap-bench-{subject}-"))
    sinks(url, reset=True)
    try:
        pairs, evidence, how = SETUPS[subject](url, modes)
    except Exception as exc:
        print(json.dumps({"subject": subject, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return
    print(json.dumps({"subject": subject, "how": how, "skipped": SKIPPED}), flush=True)
    for mode in modes:
        if mode not in pairs:
            continue
        bare, instrumented = measure(*pairs[mode], calls, warmup)
        print(
            json.dumps({"subject": subject, "mode": mode, "bare": bare, "instrumented": instrumented}),
            flush=True,
        )
    print(json.dumps({"subject": subject, "evidence": evidence()}), flush=True)


# -- the parent: runs the subjects, prints the table ---------------------------------


def ratio_interval(bare: list[float], inst: list[float], rounds: int = 400) -> tuple[float, float]:
    """A bootstrap 95% interval of the ratio of medians."""
    rng = random.Random(9)
    ratios = sorted(
        statistics.median(rng.choices(inst, k=len(inst))) / statistics.median(rng.choices(bare, k=len(bare)))
        for _ in range(rounds)
    )
    return ratios[int(rounds * 0.025)], ratios[int(rounds * 0.975) - 1]


def summarize(bare: list[float], inst: list[float]) -> dict[str, float]:
    b, i = statistics.median(bare), statistics.median(inst)
    low, high = ratio_interval(bare, inst)
    return {
        "bare_ms": b * 1e3,
        "inst_ms": i * 1e3,
        "ratio": i / b,
        "low": low,
        "high": high,
        "added_us": (i - b) * 1e6,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    subjects = [s for s in args.subjects.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    results: dict[str, Any] = {"subjects": {}, "calls": args.calls, "warmup": args.warmup, "modes": modes}
    with provider_process() as url:
        for subject in subjects:
            command = [sys.executable, os.path.abspath(__file__), "--worker", subject, "--url", url]
            command += ["--calls", str(args.calls), "--warmup", str(args.warmup), "--modes", ",".join(modes)]
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            entry: dict[str, Any] = results["subjects"].setdefault(subject, {"modes": {}})
            for line in proc.stdout.splitlines():
                if not line.startswith("{"):
                    continue
                data = json.loads(line)
                if "mode" in data:
                    entry["modes"][data["mode"]] = summarize(data["bare"], data["instrumented"])
                else:
                    entry.update({k: v for k, v in data.items() if k != "subject"})
            if proc.returncode and "error" not in entry:
                entry["error"] = f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
    return results


def report(results: dict[str, Any]) -> None:
    print(
        f"method: {results['calls']} interleaved single calls per side and mode "
        f"({results['warmup']} warm-up), "
        f"loopback provider in its own process, each subject in its own process; ratio of median wall times "
        f"(bootstrap 95% interval), median time added per call ({machine()})"
    )
    for mode in results.get("modes") or MODES:
        print(f"\n{mode}")
        for subject, entry in results["subjects"].items():
            figures = entry["modes"].get(mode)
            if figures is None:
                skipped = entry.get("skipped", {}).get(mode) or UNSUPPORTED.get(subject, {}).get(
                    mode.split("-")[0]
                )
                why = entry.get("error") or skipped or "not supported by this peer"
                print(f"  {subject:12} -  ({why})")
                continue
            print(
                f"  {subject:12} ratio {figures['ratio']:.4f} [{figures['low']:.4f}, {figures['high']:.4f}]  "
                f"bare {figures['bare_ms']:.3f} ms  instrumented {figures['inst_ms']:.3f} ms  "
                f"{figures['added_us']:+.0f} µs/call"
            )
    print()
    for subject, entry in results["subjects"].items():
        print(f"{subject}: {entry.get('how', '')}; {entry.get('evidence') or entry.get('error', '')}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--subjects", default=",".join(SUBJECTS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.url, args.calls, args.warmup, args.modes.split(","))
        return
    results = run(args)
    report(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
