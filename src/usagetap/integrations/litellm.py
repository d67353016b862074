"""LiteLLM: meter ``completion`` / ``acompletion`` / streams / embeddings from LiteLLM's callbacks.

::

    import litellm
    from usagetap.integrations.litellm import callback

    litellm.callbacks = [callback]
    with usagetap.customer("org_42"):
        litellm.completion(model="anthropic/claude-sonnet-4-5", messages=[...])

Each successful call is one record from LiteLLM's normalized usage, billed to the
customer scope in effect when the call was made (LiteLLM reports streams from its own
threads). ``provider`` is LiteLLM's ``custom_llm_provider`` in usagetap's names
(``gemini`` is ``google``, ``vertex_ai`` is ``vertex``, ``xai`` is ``x-ai``, ...; an
unknown one, its API host). Cache hits are not billed by the provider and make no record.

One call, one record: when the SDK client LiteLLM calls underneath is metered too
(``usagetap.instrument()``, or a wrapped client passed as ``client=``), its record
(the provider's exact usage) is the call's record and the callback adds none (see
:mod:`usagetap.integrations._layers`). A stream from a provider that reports usage only
when asked (OpenAI and compatible servers), without
``stream_options={"include_usage": True}``, has tokens LiteLLM estimated: its record is
``partial`` with a ``usage_issue``, unless the SDK layer underneath metered it.
Requires ``pip install 'usagetap[litellm]'``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import partial
from typing import Any, Optional

from .. import _runtime, _switch
from .._context import Scope, current_scope
from .._forksafe import module_lock
from .._log import internal_error
from ..instrument._calls import _TRUSTED_IDS
from ..providers.base import field_of
from ..publish import publish
from ._layers import LayerCapture, mark, metered_below
from ._litellm_usage import operation_of, provider_of, usage_of, usage_on_request
from ._resolve import missing

__all__ = ["callback", "settle"]

callback: Any  # the CustomLogger to list in litellm.callbacks, made on first use (module __getattr__)

_KEEP = 4096  # calls started and not yet ended (a call LiteLLM never reports the end of is forgotten)


class _Started:
    __slots__ = ("scope", "since")

    def __init__(self, scope: Scope, since: int) -> None:
        self.scope, self.since = scope, since


class _Calls:
    """The scope and layer mark of each call in flight, by LiteLLM's ``litellm_call_id``."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._items: OrderedDict[str, _Started] = OrderedDict()

    def start(self, call_id: str) -> None:
        with self._lock:
            if call_id in self._items:  # a retry inside the call: keep the caller's scope
                return
        started = _Started(current_scope(), mark())
        with self._lock:
            self._items.setdefault(call_id, started)
            while len(self._items) > _KEEP:
                self._items.popitem(last=False)

    def end(self, call_id: Any) -> Optional[_Started]:
        with self._lock:
            started = self._items.pop(call_id, None) if isinstance(call_id, str) else None
            self._lock.notify_all()
            return started

    def wait(self, timeout: float) -> bool:
        with self._lock:
            pending = set(self._items)
            return self._lock.wait_for(lambda: not pending.intersection(self._items), timeout)


_CALLS = _Calls()


def _started(kwargs: Any) -> None:
    if not _switch.enabled or not isinstance(kwargs, dict):
        return
    call_id = kwargs.get("litellm_call_id")
    if isinstance(call_id, str):
        _runtime.start()
        _CALLS.start(call_id)


def _succeeded(kwargs: Any, response: Any) -> None:
    if not isinstance(kwargs, dict):
        return
    started = _CALLS.end(kwargs.get("litellm_call_id"))
    if not _switch.enabled or kwargs.get("cache_hit") is True:
        return
    operation = operation_of(kwargs.get("call_type"))
    if operation is None:
        return
    model = kwargs.get("model")
    model = model if isinstance(model, str) else None
    if _seen_below(started, response, operation, model):
        return
    scope = current_scope() if started is None else started.scope
    name = kwargs.get("custom_llm_provider")
    params = kwargs.get("litellm_params")
    provider = provider_of(name, params.get("api_base") if isinstance(params, dict) else None)
    estimated = kwargs.get("stream") is True and usage_on_request(name) and not _asked_usage(kwargs)
    publish(
        LayerCapture(
            provider,
            operation,
            model,
            scope.customer,
            {},
            scope.dimensions,
            None,
            scope.run,
            provider in _TRUSTED_IDS,
            partial(usage_of, estimated=estimated),
            response,
        )
    )


def _seen_below(started: Optional[_Started], response: Any, operation: str, model: Optional[str]) -> bool:
    """Whether a metered SDK client underneath recorded this call (its record is the call's)."""
    usage = field_of(response, "usage")
    tokens = None if usage is None else field_of(usage, "prompt_tokens")
    if tokens is None and usage is not None:
        tokens = field_of(usage, "input_tokens")
    response_id = field_of(response, "id")
    response_id = response_id if isinstance(response_id, str) else None
    return metered_below(None if started is None else started.since, response_id, operation, tokens, model)


def _asked_usage(kwargs: dict[str, Any]) -> bool:
    for holder in (kwargs.get("optional_params"), kwargs):
        options = holder.get("stream_options") if isinstance(holder, dict) else None
        if isinstance(options, dict) and options.get("include_usage") is True:
            return True
    return False


def _failed(kwargs: Any) -> None:
    if isinstance(kwargs, dict):
        _CALLS.end(kwargs.get("litellm_call_id"))


def settle(timeout: float = 5.0) -> bool:
    """Wait until LiteLLM has reported the end of every call started so far; return whether it has.

    LiteLLM reports a sync call's success from its logging thread after the call returned,
    so call this before ``usagetap.flush()`` where the process may end right after (a
    serverless handler, a script)::

        usagetap.integrations.litellm.settle()
        usagetap.flush()

    A stream broken off before its end is never reported: it is waited for until ``timeout``.
    """
    return _CALLS.wait(timeout)


def _guard(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception as exc:
        internal_error("litellm", exc)


def _make_callback() -> Any:
    try:
        from litellm.integrations.custom_logger import CustomLogger
    except ImportError:
        raise missing("LiteLLM", "litellm") from None

    class UsagetapCallback(CustomLogger):
        """Meters each LiteLLM call that succeeds (see :mod:`usagetap.integrations.litellm`)."""

        def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
            _guard(_started, kwargs)

        async def async_log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
            _guard(_started, kwargs)

        def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            _guard(_succeeded, kwargs, response_obj)

        async def async_log_success_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            _guard(_succeeded, kwargs, response_obj)

        def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            _guard(_failed, kwargs)

        async def async_log_failure_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            _guard(_failed, kwargs)

        def __repr__(self) -> str:
            return "usagetap.integrations.litellm.callback"

    return UsagetapCallback()


_callback: Any = None
_lock = module_lock(globals(), "_lock")


def __getattr__(name: str) -> Any:
    """``callback``, made (importing LiteLLM) on first use."""
    global _callback
    if name != "callback":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if _callback is None:
            _callback = _make_callback()
        return _callback
