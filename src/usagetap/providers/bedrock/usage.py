"""Token usage of AWS Bedrock Runtime responses (boto3 ``bedrock-runtime``): pure extraction.

- Converse (``converse``, ``converse_stream``'s ``metadata`` event): ``usage.inputTokens`` EXCLUDES
  ``cacheReadInputTokens`` and ``cacheWriteInputTokens``; older responses name those
  ``cacheRead/WriteInputTokenCount`` (often both names are sent: counted once); ``cacheDetails``
  splits cache writes by TTL.
- InvokeModel: the ``x-amzn-bedrock-input-token-count`` / ``-output-token-count`` response headers
  (and ``-cache-read-`` / ``-cache-write-input-token-count``, input excluding both) are what Bedrock
  bills, whatever the model family; the body's own counts (Anthropic, Nova, Titan, Llama; Cohere and
  Mistral bodies have none) are the fallback. A stream's last chunk carries
  ``amazon-bedrock-invocationMetrics``, the same counts.

The record's model is the model id asked for (Bedrock ids, cross-region inference profiles such as
``us.`` / ``eu.`` / ``global.`` included, are what genai-prices prices), its response id the
request id Bedrock answered with (``x-amzn-requestid``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Optional

from ..anthropic.usage import message_usage
from ..base import TokenUsage, field_of, int_of, is_object, unreadable, unreported
from ..observer import Observer

__all__ = [
    "CONVERSE",
    "INVOKE",
    "ConverseStreamObserver",
    "InvokeStreamObserver",
    "converse_usage",
    "family_of",
    "headers_usage",
    "invoke_body_usage",
    "is_converse",
    "metrics_usage",
    "model_dimensions",
]

CONVERSE = "converse"
INVOKE = "invoke_model"

_METRICS = "amazon-bedrock-invocationMetrics"
_VENDORS = frozenset(
    {"anthropic", "amazon", "meta", "mistral", "cohere", "deepseek", "ai21", "openai", "qwen", "writer"}
)


# -- model ids -------------------------------------------------------------------


def _base_id(model_id: str) -> str:
    """The model id without an ARN's prefix (``arn:aws:bedrock:...:inference-profile/us.x.y``: ``us.x.y``)."""
    return model_id.rpartition("/")[2] if model_id.startswith("arn:") else model_id


def _parts(model_id: str) -> tuple[Optional[str], Optional[str]]:
    """``(inference profile geography, vendor)`` of a model id: ``us.anthropic.claude...``: us, anthropic."""
    head, _, rest = _base_id(model_id).partition(".")
    if head in _VENDORS:
        return None, head
    vendor = rest.partition(".")[0]
    return (head, vendor) if rest and vendor in _VENDORS else (None, None)


def family_of(model_id: Optional[str]) -> Optional[str]:
    """The model family (vendor) of a Bedrock model id: ``anthropic``, ``amazon``, ``meta``, ... or None."""
    return None if not model_id else _parts(model_id)[1]


def model_dimensions(model_id: Optional[str], region: Optional[str]) -> dict[str, Any]:
    """The record's Bedrock dimensions: ``aws_region``, and the cross-region ``inference_profile``
    (``us``, ``eu``, ``apac``, ``global``, ...) a model id like ``us.anthropic.claude...`` names."""
    dimensions: dict[str, Any] = {}
    if region:
        dimensions["aws_region"] = region
    profile = _parts(model_id)[0] if model_id else None
    if profile:
        dimensions["inference_profile"] = profile
    return dimensions


# -- Converse --------------------------------------------------------------------


def is_converse(response: Any) -> bool:
    """A Converse response (or the ``metadata`` of a Converse stream): usage with ``inputTokens``."""
    usage = field_of(response, "usage")
    return isinstance(usage, Mapping) and "inputTokens" in usage


def _either(usage: Any, name: str, legacy: str) -> int:
    """A count sent under its name or its legacy one (both, when both are sent: the same count)."""
    return int_of(usage, name) if field_of(usage, name) is not None else int_of(usage, legacy)


def _ttl_split(details: Any) -> dict[str, Any]:
    """Cache writes by TTL (``cacheDetails: [{ttl: "5m"|"1h", inputTokens}]``) as pricing dimensions."""
    split = {"5m": 0, "1h": 0}
    for entry in details if isinstance(details, list) else ():
        ttl = field_of(entry, "ttl")
        if ttl in split:
            split[ttl] += int_of(entry, "inputTokens")
    if not any(split.values()):
        return {}
    return {"cache_write_5m_tokens": split["5m"], "cache_write_1h_tokens": split["1h"]}


_CACHE_FIELDS = (
    "cacheReadInputTokens",
    "cacheWriteInputTokens",
    "cacheReadInputTokenCount",
    "cacheWriteInputTokenCount",
)


def _converse_counts(usage: Any, response_id: Optional[str]) -> TokenUsage:
    if not is_object(usage):
        return unreadable(usage, model=None, response_id=response_id)
    read = _either(usage, "cacheReadInputTokens", "cacheReadInputTokenCount")
    write = _either(usage, "cacheWriteInputTokens", "cacheWriteInputTokenCount")
    found = TokenUsage(
        response_id=response_id,
        input_tokens=int_of(usage, "inputTokens") + read + write,
        output_tokens=int_of(usage, "outputTokens"),
        cache_read_tokens=read,
        cache_write_tokens=write,
        dimensions=_ttl_split(field_of(usage, "cacheDetails")) if write else {},
        issue=unreported(usage, "inputTokens", "outputTokens"),
    )
    total = field_of(usage, "totalTokens")
    missing = total - found.input_tokens - found.output_tokens if type(total) is int else 0
    if missing > 0 and all(field_of(usage, name) is None for name in _CACHE_FIELDS):
        # a botocore older than the cache fields drops them from the parsed response: the total keeps them
        found.input_tokens += missing
        found.issue = f"{missing} cache tokens not itemised (botocore too old to parse them), billed as input"
    return found


def request_id(response: Any) -> Optional[str]:
    """The request id of a boto3 response (its ``ResponseMetadata``), or None."""
    metadata = field_of(response, "ResponseMetadata")
    found = field_of(metadata, "RequestId") if isinstance(metadata, Mapping) else None
    return found if isinstance(found, str) and found else None


def converse_usage(response: Any) -> TokenUsage:
    """Usage of a Converse response (the dict boto3 returns) or of a Converse stream's ``metadata``."""
    usage = field_of(response, "usage")
    if usage is None:
        return TokenUsage(response_id=request_id(response), reported=False)
    return _converse_counts(usage, request_id(response))


# -- InvokeModel -----------------------------------------------------------------


def _header_count(headers: Mapping[str, Any], kind: str) -> Optional[int]:
    value = headers.get(f"x-amzn-bedrock-{kind}-token-count")
    if value is None:
        return None
    return int(str(value).strip())


def headers_usage(headers: Mapping[str, Any], response_id: Optional[str] = None) -> Optional[TokenUsage]:
    """Usage from InvokeModel's ``x-amzn-bedrock-*-token-count`` headers (lower-case keys), or None
    when they carry no input and output counts."""
    counted = _header_count(headers, "input"), _header_count(headers, "output")
    if counted[0] is None or counted[1] is None:
        return None
    read = _header_count(headers, "cache-read-input") or 0
    write = _header_count(headers, "cache-write-input") or 0
    return TokenUsage(
        response_id=response_id,
        input_tokens=counted[0] + read + write,
        output_tokens=counted[1],
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


def metrics_usage(metrics: Any, response_id: Optional[str] = None) -> TokenUsage:
    """Usage from a stream's ``amazon-bedrock-invocationMetrics`` (input excludes cache reads/writes)."""
    if not is_object(metrics):
        return unreadable(metrics, model=None, response_id=response_id)
    read, write = int_of(metrics, "cacheReadInputTokenCount"), int_of(metrics, "cacheWriteInputTokenCount")
    return TokenUsage(
        response_id=response_id,
        input_tokens=int_of(metrics, "inputTokenCount") + read + write,
        output_tokens=int_of(metrics, "outputTokenCount"),
        cache_read_tokens=read,
        cache_write_tokens=write,
        issue=unreported(metrics, "inputTokenCount", "outputTokenCount"),
    )


_UNREAD: Any = object()
_NO_COUNTS = "the response body reports no token counts"


def invoke_body_usage(model_id: Optional[str], body: Any, response_id: Optional[str] = None) -> TokenUsage:
    """Usage from an InvokeModel body (its JSON, parsed), read as the model family writes it.

    Anthropic: Messages ``usage``; Amazon Nova: Converse-style ``usage``; Amazon Titan:
    ``inputTextTokenCount`` and ``results[].tokenCount``; Meta Llama: ``prompt_token_count`` /
    ``generation_token_count``; OpenAI-style ``usage`` (``prompt_tokens`` / ``completion_tokens``:
    Mistral's chat format, DeepSeek, ...). Cohere and Mistral text bodies carry no counts: the usage is
    unreported (the record is ``partial``).
    """
    family = family_of(model_id)
    usage = field_of(body, "usage") if isinstance(body, Mapping) else None
    if not isinstance(body, Mapping):
        found = TokenUsage(reported=False, issue="the response body is not a JSON object")
    elif family == "anthropic" and field_of(body, "type") == "message" and usage is not None:
        found = message_usage(body)
        found.model = None
    elif isinstance(usage, Mapping) and "inputTokens" in usage:
        found = _converse_counts(usage, None)
    elif isinstance(usage, Mapping) and "prompt_tokens" in usage:
        found = TokenUsage(
            input_tokens=int_of(usage, "prompt_tokens"),
            output_tokens=int_of(usage, "completion_tokens"),
            issue=unreported(usage, "prompt_tokens", "completion_tokens"),
        )
    elif "prompt_token_count" in body:
        found = TokenUsage(
            input_tokens=int_of(body, "prompt_token_count"),
            output_tokens=int_of(body, "generation_token_count"),
            issue=unreported(body, "prompt_token_count", "generation_token_count"),
        )
    elif "inputTextTokenCount" in body:
        results = body.get("results")
        found = TokenUsage(
            input_tokens=int_of(body, "inputTextTokenCount"),
            output_tokens=sum(int_of(r, "tokenCount") for r in results) if isinstance(results, list) else 0,
        )
    else:
        found = TokenUsage(reported=False, issue=_NO_COUNTS)
    found.response_id = response_id
    return found


# -- streams ---------------------------------------------------------------------
#
# Both observers read botocore's raw event-stream messages (``.headers``, ``.payload``), before
# botocore parses them for the caller: one header lookup per event; only the event carrying usage
# is decoded.


class ConverseStreamObserver(Observer):
    """``converse_stream``: usage arrives in the last event, ``metadata``, after ``messageStop``."""

    __slots__ = ("dimensions", "done", "failed", "metadata", "response_id", "stopped")

    tail = 2  # messageStop, metadata (or an error, which ends the stream)

    def __init__(
        self, response_id: Optional[str] = None, dimensions: Optional[dict[str, Any]] = None
    ) -> None:
        self.response_id = response_id
        self.dimensions = dimensions or {}
        self.metadata: Any = None
        self.stopped = False
        self.failed = False
        self.done = False  # nothing billable can follow: usage seen, or the stream failed

    def observe(self, message: Any) -> None:
        headers = message.headers
        if headers.get(":message-type") != "event":
            self.failed = self.done = True
            return
        event = headers.get(":event-type")
        if event == "metadata":
            self.metadata = json.loads(message.payload)
            self.done = True
        elif event == "messageStop":
            self.stopped = True

    @property
    def usage_final(self) -> bool:
        return self.metadata is not None

    def wants_more(self) -> bool:
        return self.stopped and not self.done

    def result(self) -> TokenUsage:
        if self.metadata is None:
            found = TokenUsage(response_id=self.response_id, reported=False)
        else:
            found = converse_usage(self.metadata)
            found.response_id = self.response_id
        found.dimensions = {**self.dimensions, **found.dimensions}
        return found


class InvokeStreamObserver(Observer):
    """``invoke_model_with_response_stream``: the last chunk carries ``amazon-bedrock-invocationMetrics``.

    Only the last chunk is kept (decoded when the stream ends); a stream cut before it is ``partial``.
    """

    __slots__ = ("_final", "dimensions", "done", "failed", "last", "response_id")

    tail = 1  # the last chunk (or an error, which ends the stream)

    def __init__(
        self, response_id: Optional[str] = None, dimensions: Optional[dict[str, Any]] = None
    ) -> None:
        self.response_id = response_id
        self.dimensions = dimensions or {}
        self.last: Optional[bytes] = None
        self.failed = False
        self.done = False  # the stream failed: nothing billable can follow
        self._final: Any = _UNREAD

    def observe(self, message: Any) -> None:
        headers = message.headers
        if headers.get(":message-type") != "event":
            self.failed = self.done = True
        elif headers.get(":event-type") == "chunk":
            self.last = message.payload

    def _metrics(self) -> Any:
        """The last chunk's invocation metrics (decoded once), or None."""
        if self._final is _UNREAD:
            self._final = None
            if self.last is not None and not self.failed:
                chunk = json.loads(base64.b64decode(json.loads(self.last)["bytes"]))
                self._final = chunk.get(_METRICS) if isinstance(chunk, dict) else None
        return self._final

    @property
    def usage_final(self) -> bool:
        return self._metrics() is not None

    def result(self) -> TokenUsage:
        metrics = self._metrics()
        if metrics is None:
            found = TokenUsage(response_id=self.response_id, reported=False)
        else:
            found = metrics_usage(metrics, self.response_id)
        found.dimensions = {**self.dimensions, **found.dimensions}
        return found
