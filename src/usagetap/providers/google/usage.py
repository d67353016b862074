"""Usage of google-genai responses: the Gemini API's and Vertex AI's JSON, or the SDK's objects.

``usageMetadata`` counts: ``promptTokenCount`` (cached tokens included),
``cachedContentTokenCount`` (the cache read), ``toolUsePromptTokenCount`` (input the model's own
tools added, billed, outside the prompt count), ``candidatesTokenCount`` and
``thoughtsTokenCount`` (output, billed; the reasoning). In usagetap's convention::

    input_tokens  = prompt + tool_use          cache_read_tokens = cached
    output_tokens = candidates + thoughts      reasoning_tokens  = thoughts

Their sum must be the provider's ``totalTokenCount``, or the record is ``partial`` with a
``usage_issue``. A count left out is 0 (proto3 omits zeros). ``trafficType`` (Vertex) and
``serviceTier`` (the Gemini API) become dimensions; provisioned throughput is prepaid, not
priced per token (dimension ``prepaid``). The audio, image and video parts of the prompt, cache
read and output (``promptTokensDetails``, ...) become dimensions (``input_audio_tokens``, ...),
priced at their own rates where genai-prices has them. The JSON is camelCase, the SDK's objects snake_case:
both are read.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional, Union

from ..._record import Scalar
from ..base import TokenUsage, field_of, int_of, is_object, unreadable
from ..observer import Observer

__all__ = [
    "EMBEDDINGS",
    "GENERATE",
    "ContentStreamObserver",
    "batch_content_usage",
    "batch_embed_usage",
    "batch_results",
    "content_usage",
    "embed_usage",
    "grounding_dimensions",
    "is_content_response",
    "is_embed_response",
    "search_queries",
    "usage_of_metadata",
]

GENERATE = "generate_content"
EMBEDDINGS = "embeddings"

# (camelCase, snake_case) of the counts usageMetadata may carry
PROMPT = ("promptTokenCount", "prompt_token_count")
CACHED = ("cachedContentTokenCount", "cached_content_token_count")
TOOL_USE = ("toolUsePromptTokenCount", "tool_use_prompt_token_count")
CANDIDATES = ("candidatesTokenCount", "candidates_token_count")
THOUGHTS = ("thoughtsTokenCount", "thoughts_token_count")
TOTAL = ("totalTokenCount", "total_token_count")
COUNTS = (PROMPT, CACHED, TOOL_USE, CANDIDATES, THOUGHTS, TOTAL)

_TIERS = {"ON_DEMAND": "standard", "ON_DEMAND_FLEX": "flex", "ON_DEMAND_PRIORITY": "priority"}
PROVISIONED = "PROVISIONED_THROUGHPUT"


def get(obj: Any, names: tuple[str, str]) -> Any:
    """A field by its JSON (camelCase) or SDK (snake_case) name; None when absent."""
    if type(obj) is dict:  # decoded JSON: most records
        value = obj.get(names[0])
        return obj.get(names[1]) if value is None else value
    value = field_of(obj, names[0])
    return field_of(obj, names[1]) if value is None else value


def _count(meta: Any, names: tuple[str, str]) -> int:
    value = get(meta, names)
    if type(value) is int:
        return value
    return int_of({names[0]: value}, names[0])  # 0 for None, else int_of's checks and errors


def _text(value: Any) -> Optional[str]:
    """An enum's or a string's value."""
    value = getattr(value, "value", value)
    return value if isinstance(value, str) and value else None


def dimensions_of(meta: Any, response: Any = None) -> dict[str, Scalar]:
    """``traffic_type``, ``service_tier`` and ``prepaid`` (provisioned throughput) of a response."""
    dimensions: dict[str, Scalar] = {}
    traffic = _text(get(meta, ("trafficType", "traffic_type")))
    tier = _text(get(meta, ("serviceTier", "service_tier")))
    if tier is None and response is not None:
        tier = _text(get(response, ("serviceTier", "service_tier")))
    if traffic is not None:
        dimensions["traffic_type"] = traffic
        if traffic == PROVISIONED:
            dimensions["prepaid"] = True
        tier = tier or _TIERS.get(traffic)
    if tier is not None and tier != "unspecified":
        dimensions["service_tier"] = tier.lower()
    return dimensions


# (camelCase, snake_case) of a modality breakdown -> the dimension of each priced modality
_MODALITIES: tuple[tuple[tuple[str, str], dict[str, str]], ...] = (
    (
        ("promptTokensDetails", "prompt_tokens_details"),
        {"AUDIO": "input_audio_tokens", "IMAGE": "input_image_tokens", "VIDEO": "input_video_tokens"},
    ),
    (
        ("cacheTokensDetails", "cache_tokens_details"),
        {
            "AUDIO": "cache_audio_read_tokens",
            "IMAGE": "cache_image_read_tokens",
            "VIDEO": "cache_video_read_tokens",
        },
    ),
    (
        ("candidatesTokensDetails", "candidates_tokens_details"),
        {"AUDIO": "output_audio_tokens", "IMAGE": "output_image_tokens", "VIDEO": "output_video_tokens"},
    ),
)


def _modality_dimensions(meta: Any) -> dict[str, Scalar]:
    """The audio, image and video parts of the prompt, the cache read and the output
    (``promptTokensDetails`` and the like: ``{modality, tokenCount}`` items) as dimensions."""
    dimensions: dict[str, Scalar] = {}
    for names, dimension_of in _MODALITIES:
        details = get(meta, names)
        if not isinstance(details, (list, tuple)):
            continue
        for item in details:
            dimension = dimension_of.get(_text(get(item, ("modality", "modality"))) or "")
            count = _count(item, ("tokenCount", "token_count"))
            if dimension is not None and count > 0:
                dimensions[dimension] = int(dimensions.get(dimension, 0)) + count
    return dimensions


def usage_of_metadata(
    meta: Any, model: Optional[str], response_id: Optional[str], response: Any = None
) -> TokenUsage:
    """The usage one ``usageMetadata`` reports (None or missing: not reported); ``response``: the
    response it came in, for the service tier it may name (see :func:`dimensions_of`)."""
    if meta is None:
        return TokenUsage(model=model, response_id=response_id, reported=False)
    if not is_object(meta):
        return unreadable(meta, model=model, response_id=response_id)
    prompt, cached, tool_use = _count(meta, PROMPT), _count(meta, CACHED), _count(meta, TOOL_USE)
    candidates, thoughts = _count(meta, CANDIDATES), _count(meta, THOUGHTS)
    usage = TokenUsage(
        model=model,
        response_id=response_id,
        input_tokens=prompt + tool_use,
        output_tokens=candidates + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
        dimensions={**dimensions_of(meta, response), **_modality_dimensions(meta)},
    )
    counted = usage.input_tokens + usage.output_tokens
    if get(meta, TOTAL) is None:
        if counted:
            usage.issue = f"total_token_count not reported (counts add up to {counted})"
        else:
            usage.reported = False
            usage.issue = "no token counts reported"
    elif _count(meta, TOTAL) != counted:
        usage.issue = (
            f"total_token_count {_count(meta, TOTAL)} is not prompt + tool_use + candidates + thoughts "
            f"({counted})"
        )
    return usage


def _model(response: Any) -> Optional[str]:
    model = get(response, ("modelVersion", "model_version"))
    return model if isinstance(model, str) and model else None


def content_usage(response: Any) -> TokenUsage:
    """The usage of a ``generateContent`` response (JSON, its text, or a ``GenerateContentResponse``)."""
    if isinstance(response, (str, bytes)):
        response = json.loads(response)
    meta = get(response, ("usageMetadata", "usage_metadata"))
    usage = usage_of_metadata(meta, _model(response), get(response, ("responseId", "response_id")), response)
    if meta is None or not is_object(meta):  # no counts: the tier the response names, still
        usage.dimensions.update(dimensions_of({}, response))
    usage.dimensions.update(grounding_dimensions(usage.model, search_queries(response)))
    return usage


_MAJOR = re.compile(r"gemini-(\d+)")


def search_queries(chunk: Any) -> dict[int, int]:
    """Candidate index -> its Google Search queries (``groundingMetadata.webSearchQueries``), counted."""
    found: dict[int, int] = {}
    for i, candidate in enumerate(get(chunk, ("candidates", "candidates")) or ()):
        metadata = get(candidate, ("groundingMetadata", "grounding_metadata"))
        queries = get(metadata, ("webSearchQueries", "web_search_queries")) if metadata is not None else None
        if isinstance(queries, (list, tuple)) and queries:
            index = field_of(candidate, "index")
            found[index if type(index) is int else i] = len(queries)
    return found


def grounding_dimensions(model: Optional[str], queries: dict[int, int]) -> dict[str, Scalar]:
    """``grounding_searches``: what Google bills for grounding with Google Search, per its model:
    Gemini 3 and later each search query, earlier models each grounded prompt (one per response)."""
    if not queries:
        return {}
    major = _MAJOR.match(model or "")
    per_query = major is not None and int(major.group(1)) >= 3
    return {"grounding_searches": sum(queries.values()) if per_query else 1}


def embed_usage(response: Any, model: Optional[str] = None) -> TokenUsage:
    """The usage of an embeddings response: ``:embedContent`` (usageMetadata), ``:predict`` (per
    prediction ``statistics.token_count``) or ``EmbedContentResponse``; the Gemini API's
    ``:batchEmbedContents`` reports none (a ``partial`` record)."""
    if isinstance(response, (str, bytes)):
        response = json.loads(response)
    meta = get(response, ("usageMetadata", "usage_metadata"))
    if meta is not None:
        return usage_of_metadata(meta, model, None)
    dimensions: dict[str, Scalar] = {}
    metadata = field_of(response, "metadata") or {}
    characters = get(metadata, ("billableCharacterCount", "billable_character_count"))
    if type(characters) is int:
        dimensions["billable_characters"] = characters
    counts = [
        get(get(item, ("embeddings", "embeddings")) or item, ("statistics", "statistics"))
        for item in (field_of(response, "predictions") or field_of(response, "embeddings") or ())
    ]
    if counts and all(stats is not None and field_of(stats, "token_count") is not None for stats in counts):
        total = sum(int_of(stats, "token_count") for stats in counts)
        return TokenUsage(model=model, input_tokens=total, dimensions=dimensions)
    return TokenUsage(
        model=model,
        dimensions=dimensions,
        reported=False,
        issue="the embeddings response reports no token counts",
    )


_SUCCEEDED = frozenset({"BATCH_STATE_SUCCEEDED", "JOB_STATE_SUCCEEDED"})


def batch_results(job: Any) -> Optional[tuple[Optional[str], list[Any]]]:
    """``(model, responses)`` of a Gemini API batch job that has succeeded (its JSON), else None.

    The responses are the job's inlined ones (``metadata.output.inlinedResponses.inlinedResponses[].
    response``); a request that failed has an ``error`` instead and is not billed.
    """
    metadata = field_of(job, "metadata") or {}
    if field_of(metadata, "state") not in _SUCCEEDED:
        return None
    inlined = field_of(field_of(metadata, "output") or {}, "inlinedResponses") or {}
    items = field_of(inlined, "inlinedResponses") or ()
    responses = [field_of(item, "response") for item in items if field_of(item, "response") is not None]
    model = field_of(metadata, "model")
    return (model.rpartition("models/")[2] if isinstance(model, str) else None), responses


def batch_content_usage(response: Any) -> TokenUsage:
    """The usage of one response of a batch job (priced at batch rates: dimension ``batch``)."""
    usage = content_usage(response)
    usage.dimensions["batch"] = True
    return usage


def batch_embed_usage(response: Any) -> TokenUsage:
    """The usage of one embedding of a batch job (the Gemini API reports none: ``partial``)."""
    usage = embed_usage(response)
    usage.dimensions["batch"] = True
    return usage


def is_content_response(response: Any) -> bool:
    """Whether ``response`` is a ``generateContent`` response (JSON or SDK object); one without
    ``usageMetadata`` is one too (its record is ``partial``)."""
    names = (("usageMetadata", "usage_metadata"), ("candidates", "candidates"), ("responseId", "response_id"))
    return any(get(response, pair) is not None for pair in (*names, ("promptFeedback", "prompt_feedback")))


def is_embed_response(response: Any) -> bool:
    """Whether ``response`` is an embeddings response (JSON or SDK object)."""
    return any(field_of(response, name) is not None for name in ("embedding", "embeddings", "predictions"))


_KEPT_CHUNKS = 4096  # chunk texts a stream keeps undecoded before it decodes them as they come


class ContentStreamObserver(Observer):
    """A ``streamGenerateContent`` stream: each chunk carries the running totals so far.

    Per count, the last value seen wins (a later chunk may leave one out: it keeps the earlier
    one). The usage is final once a chunk carries a ``finishReason`` (or the prompt a
    ``blockReason``); a stream broken off before it is ``partial``. Chunks come as the JSON text
    the SDK parses next: the caller's thread only keeps the text and looks for the finish; the
    text is decoded when the record is built, off that thread (:meth:`result`).
    """

    __slots__ = ("chunks", "counts", "finished", "model", "queries", "response_id", "seen")

    def __init__(self) -> None:
        self.chunks: list[Union[str, bytes]] = []  # chunk texts not decoded yet, in order
        self.counts: dict[str, Any] = {}
        self.queries: dict[int, int] = {}  # per candidate, the last grounding queries seen
        self.model: Optional[str] = None
        self.response_id: Optional[str] = None
        self.finished = False
        self.seen = False

    def observe(self, item: Any) -> None:
        item = getattr(item, "body", item)  # an SdkHttpResponse (a dict in google-genai 1.x)
        self.seen = True
        if isinstance(item, str):
            self.chunks.append(item)
            if '"finishReason":' in item or '"blockReason":' in item:
                self.finished = True
        elif isinstance(item, bytes):
            self.chunks.append(item)
            if b'"finishReason":' in item or b'"blockReason":' in item:
                self.finished = True
        else:
            self._decoded(item)
        if len(self.chunks) > _KEPT_CHUNKS:  # a very long stream: fold the oldest now, bounding memory
            self._fold()

    def _fold(self) -> None:
        chunks, self.chunks = self.chunks, []
        for text in chunks:
            self._decoded(json.loads(text))

    def _decoded(self, chunk: Any) -> None:
        if self.response_id is None:
            self.response_id = get(chunk, ("responseId", "response_id"))
            self.model = _model(chunk)
        meta = get(chunk, ("usageMetadata", "usage_metadata"))
        if meta is not None and is_object(meta):
            for name, value in meta.items() if isinstance(meta, dict) else vars(meta).items():
                if value is not None:
                    self.counts[name] = value
        self.queries.update(search_queries(chunk))
        for candidate in get(chunk, ("candidates", "candidates")) or ():
            if get(candidate, ("finishReason", "finish_reason")) is not None:
                self.finished = True
        feedback = get(chunk, ("promptFeedback", "prompt_feedback"))
        if feedback is not None and get(feedback, ("blockReason", "block_reason")) is not None:
            self.finished = True

    @property
    def usage_final(self) -> bool:
        return self.finished

    def result(self) -> TokenUsage:
        self._fold()
        if not self.counts:
            return TokenUsage(model=self.model, response_id=self.response_id, reported=False)
        usage = usage_of_metadata(self.counts, self.model, self.response_id)
        usage.dimensions.update(grounding_dimensions(usage.model, self.queries))
        return usage
