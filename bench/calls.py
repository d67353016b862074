"""Work usagetap adds to a call, counted: Python and C function calls on the caller's thread.

Method: the same modes as ``bench/overhead.py``, each call's HTTP exchange
replayed in memory (the SDK's own ``MockTransport`` serving the bytes the
loopback provider sent for that request, fetched once before counting), so a
call does the same work every time; ``sys.setprofile`` counts the function
calls of the caller's thread during ``--calls`` calls per side, bare client
and ``usagetap.wrap()``-ed client, and prints the difference per call. Unlike
wall time on a shared machine, the counts repeat exactly between runs: they
show what a change to usagetap's per-call path adds or removes, not what it
costs in time. Delivery runs on its own threads and is not counted.

Bedrock's botocore client gets its replies from a ``before-send`` handler instead of HTTP.

    python bench/calls.py [--calls 20] [--modes chat,chat-stream,...] [--detail]
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from _common import in_temp_dir, machine, provider_process
from overhead import MODES, anthropic_calls, new_provider_pairs, openai_calls

Reply = tuple[int, list[tuple[str, str]], bytes]


def fetcher(base: str) -> Callable[[str, str, bytes], Reply]:
    """``fetch(method, target, body)``: the provider at ``base``'s reply to a request, fetched once."""
    import httpx

    upstream = httpx.Client(base_url=base, timeout=30)
    replies: dict[tuple[str, str, bytes], Reply] = {}

    def fetch(method: str, target: str, body: bytes) -> Reply:
        key = (method, target, body)
        if key not in replies:
            reply = upstream.request(
                method, target, content=body, headers={"content-type": "application/json"}
            )
            headers = [
                (k, v)
                for k, v in reply.headers.items()
                if k.lower() not in ("content-length", "content-encoding")
            ]
            replies[key] = (reply.status_code, headers, reply.content)
        return replies[key]

    return fetch


def replay(httpx: Any, base: str) -> Any:
    """An ``httpx`` (or ``httpx2``) mock transport answering with the replies of the provider at ``base``."""
    fetch = fetcher(base)

    def handler(request: Any) -> Any:
        status, headers, content = fetch(request.method, request.url.raw_path.decode(), request.content)
        return httpx.Response(status, headers=headers, content=content)

    return httpx.MockTransport(handler)


def transport(sdk: Any, base: str) -> Any:
    """An HTTP client for a Stainless ``sdk`` answered with the replies of the provider at ``base``."""
    client_cls = sdk.DefaultHttpxClient
    httpx = importlib.import_module(client_cls.__mro__[1].__module__.split(".")[0])
    return client_cls(transport=replay(httpx, base))


def botocore_replay(client: Any, base: str) -> Any:
    """``client`` (botocore) answered with the replies of the provider at ``base``, replayed from memory.

    A ``before-send`` handler returns the response, as botocore lets one do: no socket is opened.
    """
    import io
    from urllib.parse import urlsplit

    import urllib3
    from botocore.awsrequest import AWSResponse

    fetch = fetcher(base)

    def send(request: Any, **kwargs: Any) -> Any:
        url = urlsplit(request.url)
        body = request.body if isinstance(request.body, bytes) else (request.body or b"")
        status, headers, content = fetch(request.method, url.path, body)
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(content), headers=headers, status=status, preload_content=False
        )
        return AWSResponse(request.url, status, dict(headers), raw)

    client.meta.events.register("before-send", send)
    return client


def new_provider_versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("google-genai", "botocore", "mistralai"))


def count(call: Callable[[], None], calls: int) -> collections.Counter[Any]:
    counts: collections.Counter[Any] = collections.Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            counts["python"] += 1
            counts[(os.path.basename(code.co_filename), code.co_name)] += 1
        elif event == "c_call":
            counts["c"] += 1

    sys.setprofile(profile)
    try:
        for _ in range(calls):
            call()
    finally:
        sys.setprofile(None)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--detail", action="store_true", help="list the added functions by name")
    args = parser.parse_args()
    in_temp_dir("calls")
    import anthropic
    import openai

    import usagetap

    print(
        f"method: function calls on the caller's thread per call (sys.setprofile), usagetap.wrap()-ed "
        f"minus bare client, {args.calls} calls per side, HTTP replayed in memory ({machine()}, "
        f"openai {openai.__version__}, anthropic {anthropic.__version__}, {new_provider_versions()})"
    )
    with provider_process() as url:

        def oai() -> Any:
            return openai.OpenAI(
                base_url=f"{url}/v1", api_key="bench", max_retries=0, http_client=transport(openai, url)
            )

        def claude() -> Any:
            return anthropic.Anthropic(
                base_url=url, api_key="bench", max_retries=0, http_client=transport(anthropic, url)
            )

        bare, wrapped = oai(), usagetap.wrap(oai(), provider="openai")
        sides = [openai_calls(c.chat.completions.create, c.responses.create) for c in (bare, wrapped)]
        for side, c in zip(sides, (claude(), usagetap.wrap(claude(), provider="anthropic")), strict=False):
            side.update(anthropic_calls(c.messages.create))
        import httpx

        added, skipped = new_provider_pairs(
            url,
            args.modes.split(","),
            lambda client, family: usagetap.wrap(client, provider=family),
            http=lambda family: httpx.Client(transport=replay(httpx, url)),
            prepare=lambda client, family: botocore_replay(client, url) if family == "bedrock" else client,
        )
        for mode, calls in added.items():
            for side, call in zip(sides, calls, strict=True):
                side[mode] = call
        usagetap.customer("org_bench").__enter__()
        print(f"{'mode':22} {'bare py':>9} {'added py':>9} {'added C':>8}")
        for mode in args.modes.split(","):
            if mode in skipped:
                print(f"{mode:22} -  ({skipped[mode]})")
                continue
            for side in sides:
                for _ in range(3):
                    side[mode]()  # the replies are fetched, the code paths warm
            base, metered = (count(side[mode], args.calls) for side in sides)
            added = {k: (metered[k] - base[k]) / args.calls for k in set(base) | set(metered)}
            print(f"{mode:22} {base['python'] / args.calls:9.0f} {added['python']:+9.1f} {added['c']:+8.1f}")
            if args.detail:
                for (file, name), n in sorted(
                    ((k, v) for k, v in added.items() if isinstance(k, tuple) and abs(v) >= 0.5),
                    key=lambda kv: -kv[1],
                ):
                    print(f"{'':24}{n:+6.1f} {file}:{name}")
        usagetap.shutdown(timeout=10)


if __name__ == "__main__":
    main()
