"""Google's wire format for the loopback server: the Gemini API and Vertex AI REST paths.

``POST /{version}/models/{model}:generateContent`` (Vertex: ``/{version}/projects/{p}/locations/{l}/
publishers/google/models/{model}:...``), ``:streamGenerateContent`` (SSE, every chunk carrying the
running totals, the last one a ``finishReason``), ``:embedContent`` (with ``usageMetadata``, as
Vertex answers), ``:batchEmbedContents`` (no usage, as the Gemini API answers) and ``:predict``
(Vertex's per-prediction ``statistics.token_count``); the Gemini API's batch jobs of inlined requests
(``:batchGenerateContent``, then ``GET /{version}/batches/{id}``, succeeded on its first read).

Counts are deterministic: the prompt is the words of ``contents`` and ``systemInstruction``
(plus 32 cached tokens when ``cachedContent`` is named), the reply ``maxOutputTokens`` words
(default 12), thoughts ``thinkingBudget`` (capped at 64; 16 with only ``includeThoughts``), tool
use 5 tokens per tool. Vertex replies carry ``trafficType`` (``server.state["google.traffic_type"]``,
default ``ON_DEMAND``), Gemini API replies the request's ``serviceTier`` (``standard`` by default).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from ...testing._wire import Event, Issued, Reply, Wire, count_tokens, reply_words

__all__ = ["WIRE"]

CACHED_TOKENS = 32
THOUGHTS = 16
TOOL_TOKENS = 5
_PATH = re.compile(
    r"/(?P<version>v1\w*)/(?P<vertex>projects/[^/]+/locations/[^/]+/publishers/google/)?"
    r"models/(?P<model>[^/:]+):(?P<method>\w+)"
)


def _ints(usage: dict[str, int]) -> dict[str, int]:
    """``usage`` without its zero counts (proto3 leaves zeros out)."""
    return {key: value for key, value in usage.items() if value}


def _usage(server: Any, body: dict[str, Any], vertex: bool) -> tuple[dict[str, Any], list[str]]:
    config = body.get("generationConfig") or {}
    cached = CACHED_TOKENS if body.get("cachedContent") else 0
    prompt = count_tokens(body.get("contents")) + count_tokens(body.get("systemInstruction")) + cached
    words = reply_words(int(config.get("maxOutputTokens") or 12))
    thinking = config.get("thinkingConfig") or {}
    budget = thinking.get("thinkingBudget") or thinking.get("thinking_budget")
    shown = thinking.get("includeThoughts") or thinking.get("include_thoughts")
    thoughts = min(int(budget), 64) if budget else THOUGHTS if shown else 0
    tool_use = TOOL_TOKENS * len(body.get("tools") or ())
    meta: dict[str, Any] = _ints(
        {
            "promptTokenCount": prompt,
            "cachedContentTokenCount": cached,
            "candidatesTokenCount": len(words),
            "toolUsePromptTokenCount": tool_use,
            "thoughtsTokenCount": thoughts,
            "totalTokenCount": prompt + tool_use + len(words) + thoughts,
        }
    )
    if vertex:
        meta["trafficType"] = server.state.get("google.traffic_type", "ON_DEMAND")
    else:
        tier = body.get("serviceTier")
        meta["serviceTier"] = tier.lower() if isinstance(tier, str) and tier else "standard"
    return meta, words


def _issue(server: Any, response_id: str, path: str, model: str, stream: bool, meta: dict[str, Any]) -> None:
    thoughts = meta.get("thoughtsTokenCount", 0)
    server.issue(
        Issued(
            response_id,
            path,
            model,
            stream,
            meta.get("promptTokenCount", 0) + meta.get("toolUsePromptTokenCount", 0),
            meta.get("candidatesTokenCount", 0) + thoughts,
            cache_read_tokens=meta.get("cachedContentTokenCount", 0),
            reasoning_tokens=thoughts,
        )
    )


def _content(words: list[str], finish: bool, lead: str = "") -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": lead + " ".join(words)}]},
        "index": 0,
    }
    if finish:
        candidate["finishReason"] = "STOP"
    return candidate


def _generate(server: Any, body: dict[str, Any], model: str, vertex: bool, path: str) -> Reply:
    meta, words = _usage(server, body, vertex)
    response_id = uuid.uuid4().hex[:22]
    _issue(server, response_id, path, model, False, meta)
    return Reply(
        body={
            "candidates": [_content(words, True)],
            "usageMetadata": meta,
            "modelVersion": model,
            "responseId": response_id,
        }
    )


def _stream(server: Any, body: dict[str, Any], model: str, vertex: bool, path: str) -> Reply:
    """Three chunks of running totals: thoughts only (no candidates count yet), then the reply in two
    parts, tool use appearing from the second chunk on, ``finishReason`` on the last."""
    meta, words = _usage(server, body, vertex)
    response_id = uuid.uuid4().hex[:22]
    _issue(server, response_id, path, model, True, meta)
    half = len(words) // 2
    cut = (0, half, len(words))
    events: list[Event] = []
    for i, (done, finish) in enumerate(((0, False), (cut[1], False), (cut[2], True))):
        running = {
            k: v for k, v in meta.items() if k not in ("candidatesTokenCount", "toolUsePromptTokenCount")
        }
        if done:
            running["candidatesTokenCount"] = done
        if i and "toolUsePromptTokenCount" in meta:
            running["toolUsePromptTokenCount"] = meta["toolUsePromptTokenCount"]
        running["totalTokenCount"] = sum(
            running.get(k, 0)
            for k in (
                "promptTokenCount",
                "candidatesTokenCount",
                "toolUsePromptTokenCount",
                "thoughtsTokenCount",
            )
        )
        part = words[cut[i - 1] if i else 0 : done] if i else []
        chunk = {
            "candidates": [_content(part, finish, " " if i > 1 else "")],
            "usageMetadata": running,
            "modelVersion": model,
            "responseId": response_id,
        }
        events.append((None, chunk))
    return Reply(
        events=events,
        error_event=(None, {"error": {"code": 500, "message": "injected", "status": "INTERNAL"}}),
    )


def _embed_tokens(server: Any, path: str, model: str, counts: list[int], reported: bool) -> None:
    server.issue(
        Issued(f"embed_{uuid.uuid4().hex[:12]}", path, model, False, sum(counts), 0, reported=reported)
    )


def _embed_content(server: Any, body: dict[str, Any], model: str, path: str) -> Reply:
    tokens = count_tokens(body.get("content"))
    _embed_tokens(server, path, model, [tokens], True)
    return Reply(
        body={
            "embedding": {"values": [0.25, -0.5, 0.125]},
            "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens},
        }
    )


def _batch_embed(server: Any, body: dict[str, Any], model: str, path: str) -> Reply:
    requests = body.get("requests") or []
    _embed_tokens(server, path, model, [count_tokens(r.get("content")) for r in requests], False)
    return Reply(body={"embeddings": [{"values": [0.5, 0.25, -0.125]} for _ in requests]})


def _predict(server: Any, body: dict[str, Any], model: str, path: str) -> Reply:
    instances = body.get("instances") or []
    counts = [count_tokens(instance.get("content")) for instance in instances]
    _embed_tokens(server, path, model, counts, True)
    characters = sum(len(str(instance.get("content", ""))) for instance in instances)
    return Reply(
        body={
            "predictions": [
                {"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": n, "truncated": False}}}
                for n in counts
            ],
            "metadata": {"billableCharacterCount": characters},
        }
    )


def _batch_create(server: Any, body: dict[str, Any], model: str) -> Reply:
    """A batch job of inlined requests: it has succeeded by the time it is first read."""
    requests = (((body.get("batch") or {}).get("inputConfig") or {}).get("requests") or {}).get(
        "requests"
    ) or []
    name = f"batches/{uuid.uuid4().hex[:16]}"
    server.state.setdefault("google.batches", {})[name] = (model, [r.get("request") or {} for r in requests])
    return Reply(body={"name": name, "metadata": _job(name, model, "BATCH_STATE_PENDING")})


def _job(name: str, model: str, state: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "name": name,
        "model": f"models/{model}",
        "state": state,
    }


def _batch_get(server: Any, body: dict[str, Any], headers: dict[str, str], match: re.Match[str]) -> Reply:
    """The job, succeeded: its responses made (and issued) on the first read, the same ones after."""
    name = f"batches/{match['id']}"
    jobs = server.state.get("google.batches", {})
    if name not in jobs:
        return Reply(
            status=404, body={"error": {"code": 404, "message": "no such batch", "status": "NOT_FOUND"}}
        )
    model, requests = jobs[name]
    done = server.state.setdefault("google.batch_output", {})
    if name not in done:
        path = f"/{match['version']}/{name}"
        done[name] = [_generate(server, request, model, False, path).body for request in requests]
    metadata = _job(name, model, "BATCH_STATE_SUCCEEDED")
    metadata["output"] = {"inlinedResponses": {"inlinedResponses": [{"response": r} for r in done[name]]}}
    return Reply(body={"name": name, "metadata": metadata, "done": True})


def _route(server: Any, body: dict[str, Any], headers: dict[str, str], match: re.Match[str]) -> Reply:
    model, method, vertex, path = match["model"], match["method"], bool(match["vertex"]), match[0]
    if method == "generateContent":
        return _generate(server, body, model, vertex, path)
    if method == "streamGenerateContent":
        return _stream(server, body, model, vertex, path)
    if method == "embedContent":
        return _embed_content(server, body, model, path)
    if method == "batchEmbedContents":
        return _batch_embed(server, body, model, path)
    if method == "predict":
        return _predict(server, body, model, path)
    if method == "batchGenerateContent":
        return _batch_create(server, body, model)
    return Reply(
        status=404, body={"error": {"code": 404, "message": f"no method {method}", "status": "NOT_FOUND"}}
    )


_BATCH = re.compile(r"/(?P<version>v1\w*)/batches/(?P<id>[^/:]+)")

WIRE = Wire(patterns=[("POST", _PATH, _route), ("GET", _BATCH, _batch_get)])
