"""What is checked before a metered call reaches the provider: the customer policy and budget limits.

Customer policy (``usagetap.configure(customer_policy=...)``) for a call with no customer in scope:

- ``"allow"`` (default): record it with ``customer=None`` and warn once per process;
- ``"warn"``: the same, with a warning for every such call;
- ``"require"``: raise :class:`usagetap.MissingCustomer`; the provider is not called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import limits
from ._log import WARNING, internal_error, log, log_once
from ._state import STATE
from .errors import BudgetExceeded, ConfigurationError, MissingCustomer

if TYPE_CHECKING:
    from .instrument._calls import Call

__all__ = ["CUSTOMER_POLICIES", "admit", "customer_policy", "set_customer_policy"]

CUSTOMER_POLICIES = ("allow", "warn", "require")


def set_customer_policy(policy: str) -> None:
    """Set what happens to calls with no customer: ``"allow"``, ``"warn"`` or ``"require"``."""
    if policy not in CUSTOMER_POLICIES:
        raise ConfigurationError(
            f"customer_policy must be one of {', '.join(map(repr, CUSTOMER_POLICIES))}; got {policy!r}"
        )
    STATE.customer_policy = policy


def customer_policy() -> str:
    return STATE.customer_policy


def admit(call: Call) -> None:
    """Let the call through, or raise :class:`MissingCustomer` / :class:`usagetap.BudgetExceeded`.

    Anything else going wrong here is logged and counted; the call then goes ahead.
    """
    scope = call.scope
    customer = scope.customer if scope.customer is not None else call.binding.customer
    if customer is None:
        _no_customer(call)
        return
    if not STATE.limits_on:
        call.request = None
        return
    try:
        limits.check(customer, call)
    except BudgetExceeded:
        raise
    except Exception as exc:
        internal_error("limits", exc)
    finally:
        call.request = None  # estimated: the body is not kept while the call runs


def _no_customer(call: Call) -> None:
    policy = STATE.customer_policy
    what = f"a {call.operation} call to {call.provider}" + (
        f" (model {call.request_model})" if call.request_model else ""
    )
    if policy == "require":
        raise MissingCustomer(
            f"usagetap: {what} was made with no customer in scope and customer_policy='require'; "
            "the provider was not called. Wrap it in usagetap.customer(...) or usagetap.track(...), "
            "or bind one with usagetap.wrap(client, customer=...)"
        )
    message = (
        "usagetap: %s was made with no customer in scope; it is recorded with customer=None "
        "(use usagetap.customer(...) or wrap(client, customer=...))"
    )
    if policy == "warn":
        log.warning(message, what)
    else:
        log_once(WARNING, "no-customer", message, what)
