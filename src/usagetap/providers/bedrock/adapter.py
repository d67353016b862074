"""Instrumentation for boto3's ``bedrock-runtime`` clients (botocore), hooked at ``_make_api_call``.

Every operation of a botocore client goes through ``BaseClient._make_api_call(operation_name,
api_params)`` and returns the parsed response dict. ``wrap()`` puts a hook on one client's own
``_make_api_call`` (same object, same type); ``instrument()`` wraps ``BaseClient._make_api_call``
with wrapt, metering only ``bedrock-runtime`` clients. Billable operations: ``Converse``,
``ConverseStream``, ``InvokeModel`` and ``InvokeModelWithResponseStream``, for every model family.

``usagetap.record(response, provider="bedrock")`` takes a Converse response dict, an InvokeModel
response dict (its token-count headers), or Claude's Messages JSON (Anthropic's
``AnthropicBedrock`` client, whose records also say ``bedrock``).
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Mapping
from typing import Any, Optional

from ... import _switch
from ..._log import internal_error
from ...instrument._adapter import Adapter
from ...instrument._binding import ATTR, Binding
from ...instrument._calls import Call, emit, intercept_sync
from ...instrument._streams import StreamTap
from ..anthropic import usage as anthropic_usage
from ..base import TokenUsage
from . import usage as extract
from .taps import BodyRead, attach_body, attach_events

__all__ = ["ADAPTER", "BedrockAdapter"]

SERVICE = "bedrock-runtime"
_METHOD = "_make_api_call"
_AUTO = "_usagetap_auto_binding"
_REGION = "_usagetap_region"
# botocore operation -> (record operation, streamed)
_OPERATIONS = {
    "Converse": (extract.CONVERSE, False),
    "ConverseStream": (extract.CONVERSE, True),
    "InvokeModel": (extract.INVOKE, False),
    "InvokeModelWithResponseStream": (extract.INVOKE, True),
}
_INPUT_HEADER = "x-amzn-bedrock-input-token-count"
_OUTPUT_HEADER = "x-amzn-bedrock-output-token-count"


_Request = tuple[str, Any, Optional[str]]
"""One botocore API call, as ``plan()`` sees it: its operation, parameters and the client's region."""


class _BedrockCall(Call):
    __slots__ = ("region",)

    region: Optional[str]


def _service(client: Any) -> Optional[str]:
    meta = getattr(client, "meta", None)
    name = getattr(getattr(meta, "service_model", None), "service_name", None)
    return name if isinstance(name, str) else None


def _region(client: Any) -> Optional[str]:
    region = getattr(getattr(client, "meta", None), "region_name", None)
    return region if isinstance(region, str) else None


def _client_region(client: Any) -> Optional[str]:
    """The client's region, read once per client (botocore's ``meta.region_name`` is a property)."""
    state = vars(client)
    if _REGION not in state:
        state[_REGION] = _region(client)
    region: Optional[str] = state[_REGION]
    return region


class BedrockAdapter(Adapter):
    family = "bedrock"

    def provider_for(self, client: Any) -> str:
        return "bedrock"

    def check(self, client: Any) -> None:
        service = _service(client)
        if service != SERVICE or not callable(getattr(type(client), _METHOD, None)):
            raise TypeError(
                f"usagetap.wrap() meters boto3 clients of {SERVICE!r}, not "
                f"{service or type(client).__qualname__!r}"
            )

    def install(self, client: Any, binding: Binding) -> None:
        state = vars(client)
        state[ATTR] = binding
        state[_METHOD] = types.MethodType(_make_api_call, client)

    def copy(self, client: Any) -> Any:
        # botocore has no copy(); copy.copy() would recurse in its __getattr__. The new client shares
        # the endpoint (connection pool), credentials and event hooks of ``client``.
        new = object.__new__(type(client))
        state = vars(new)
        state.update(vars(client))
        for name in (ATTR, _METHOD, _AUTO, _REGION):
            state.pop(name, None)
        return new

    def patch(self, classes: tuple[type, ...], patched: dict[tuple[type, str], Any]) -> None:
        import wrapt

        for cls in classes:
            owner = next(klass for klass in cls.__mro__ if _METHOD in vars(klass))
            if (owner, _METHOD) in patched:
                continue
            original = vars(owner)[_METHOD]
            wrapt.wrap_function_wrapper(owner, _METHOD, _wrapper(self))
            patched[owner, _METHOD] = original

    def plan(self, binding: Binding, options: _Request) -> Optional[Call]:
        operation, sent, region = options
        spec = _OPERATIONS.get(operation)
        if spec is None:
            return None
        params = sent if type(sent) is dict or isinstance(sent, Mapping) else {}
        model = params.get("modelId")
        call = _BedrockCall(binding, spec[0], model if isinstance(model, str) else None, spec[1], options)
        call.region = region
        call.request = params
        return call

    def on_result(self, call: Call, result: Any) -> Any:
        if isinstance(call, _BedrockCall):
            try:
                if call.operation == extract.CONVERSE and not call.stream:  # read on the intake thread
                    metadata = result.get("ResponseMetadata")
                    request_id = metadata.get("RequestId") if type(metadata) is dict else None
                    source = (call.request_model, call.region, result.get("usage"), request_id)
                    emit(call, _converse_source_usage, source)
                else:
                    _meter(call, result)
            except Exception as exc:  # the call was billed: its record says usagetap could not read it
                internal_error("result", exc)
                emit(call, _unreadable, type(result).__name__)
        return result

    def describe(self, response: Any) -> Optional[tuple[str, Callable[[Any], TokenUsage]]]:
        if anthropic_usage.is_message(response):
            return anthropic_usage.MESSAGES, anthropic_usage.message_usage
        if extract.is_converse(response):
            return extract.CONVERSE, extract.converse_usage
        headers = _headers(response)
        if _INPUT_HEADER in headers and _OUTPUT_HEADER in headers:
            return extract.INVOKE, _recorded_invoke
        return None


def _meter(call: _BedrockCall, result: Any) -> None:
    """Emit the call's record (InvokeModel with count headers) or tap its stream or body to emit it later."""
    response_id = extract.request_id(result)
    facts = extract.model_dimensions(call.request_model, call.region)
    if call.operation == extract.CONVERSE:
        attach_events(result["stream"], StreamTap(call, extract.ConverseStreamObserver(response_id, facts)))
    elif call.stream:
        attach_events(result["body"], StreamTap(call, extract.InvokeStreamObserver(response_id, facts)))
    else:
        headers = _headers(result)
        if _INPUT_HEADER in headers and _OUTPUT_HEADER in headers:
            counts = {k: v for k, v in headers.items() if k.startswith("x-amzn-bedrock-")}
            emit(call, _with(facts, lambda h: extract.headers_usage(h, response_id)), counts)
        else:
            attach_body(result["body"], call, _with(facts, _body_reader(call.request_model, response_id)))


def _converse_source_usage(source: tuple[Optional[str], Optional[str], Any, Any]) -> Optional[TokenUsage]:
    """The usage of a Converse response, from what ``_meter`` kept of it: model, region, usage, request id."""
    model, region, usage, request_id = source
    response = {"usage": usage, "ResponseMetadata": {"RequestId": request_id}}
    found: Optional[TokenUsage] = _with(extract.model_dimensions(model, region), extract.converse_usage)(
        response
    )
    return found


def _unreadable(kind: str) -> TokenUsage:
    return TokenUsage(reported=False, issue=f"usagetap could not read this response ({kind})")


def _headers(response: Any) -> Mapping[str, Any]:
    metadata = response.get("ResponseMetadata") if isinstance(response, Mapping) else None
    headers = metadata.get("HTTPHeaders") if isinstance(metadata, Mapping) else None
    return headers if isinstance(headers, Mapping) else {}


def _recorded_invoke(response: Any) -> TokenUsage:
    found = extract.headers_usage(_headers(response), extract.request_id(response))
    assert found is not None  # describe() checked the headers
    return found


def _with(facts: dict[str, Any], read: Callable[[Any], Optional[TokenUsage]]) -> Callable[[Any], Any]:
    """``read``, its usage carrying the call's Bedrock dimensions (region, inference profile)."""

    def extract_usage(source: Any) -> Optional[TokenUsage]:
        found = read(source)
        if found is not None and facts:
            found.dimensions = {**facts, **found.dimensions}
        return found

    return extract_usage


def _body_reader(model_id: Optional[str], response_id: Optional[str]) -> Callable[[BodyRead], TokenUsage]:
    def read(body: BodyRead) -> TokenUsage:
        if not body.complete:
            return TokenUsage(
                response_id=response_id,
                reported=False,
                issue="no token-count headers, and the body was not read to its end",
            )
        try:
            parsed = json.loads(body.data)
        except ValueError:
            parsed = None
        return extract.invoke_body_usage(model_id, parsed, response_id)

    return read


# The client's own botocore method, bound to it; if instrument() patched the class too, its
# wrapper sees the instance is wrapped and passes the call straight through.


def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
    send = getattr(type(self), _METHOD).__get__(self, type(self))
    if not _switch.enabled or operation_name not in _OPERATIONS:  # off, or not billable
        return send(operation_name, api_params)
    state = vars(self)
    region = state[_REGION] if _REGION in state else _client_region(self)
    return intercept_sync(state[ATTR], _send, send, (operation_name, api_params, region), (), {})


def _send(send: Callable[[str, Any], Any], request: _Request) -> Any:
    """Send the request ``plan()`` saw with botocore's own ``_make_api_call(operation_name, api_params)``."""
    return send(request[0], request[1])


def _wrapper(adapter: BedrockAdapter) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _switch.enabled or instance is None:
            return wrapped(*args, **kwargs)
        state = vars(instance)
        if ATTR in state:
            return wrapped(*args, **kwargs)
        binding = state.get(_AUTO)
        if binding is None:
            binding = state[_AUTO] = (
                Binding(adapter=adapter, provider=adapter.provider_for(instance))
                if _service(instance) == SERVICE
                else False
            )
        if binding is False:
            return wrapped(*args, **kwargs)
        operation_name, api_params = _split(args, kwargs)
        if operation_name not in _OPERATIONS:
            return wrapped(*args, **kwargs)
        request = (operation_name, api_params, _client_region(instance))
        return intercept_sync(binding, _send, wrapped, request, (), {})

    return wrapper


def _split(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    operation_name = args[0] if args else kwargs["operation_name"]
    api_params = args[1] if len(args) > 1 else kwargs["api_params"]
    return operation_name, api_params


ADAPTER = BedrockAdapter()
