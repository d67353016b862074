"""The providers usagetap meters: one package per SDK family, registered in one table.

Each family's package has the same parts:

- ``usage.py``: pure extraction of token usage from the SDK's objects or their JSON (no I/O, no
  patching; it never imports :mod:`usagetap.instrument`);
- ``adapter.py``: its ``ADAPTER``, an :class:`usagetap.instrument._adapter.Adapter` saying which requests are
  billable and how to meter their results (objects, streams, raw responses);
- ``wire.py``: its ``WIRE``, the loopback wire format :class:`usagetap.testing.ProviderServer` speaks;
- anything else only that family needs.

SDKs are optional extras: the table names modules, imported when first used. A provider added
outside this package (a plugin, a test) registers the same way::

    providers.register(Provider("toy", sdk="toy_sdk", clients=("Toy", "AsyncToy"), package="my.toy"))
"""

from __future__ import annotations

from dataclasses import dataclass

from .._forksafe import module_lock

__all__ = ["Provider", "family_for", "register", "registered", "unregister"]


@dataclass(frozen=True)
class Provider:
    """One SDK family: one line of the registry.

    ``sdk``: the module its client classes live in (or under); ``clients``: the names of its public
    client classes there (``instrument()`` patches the class defining their ``request()``);
    ``names``: the provider names its records carry besides ``family`` (``usagetap.record(provider=...)``
    finds the family by them); ``compatible``: other servers imitate its API, so a provider name no
    family lists is its; ``package``: the package of its ``adapter`` and ``wire`` modules
    (default: ``usagetap.providers.<family>``).
    """

    family: str
    sdk: str
    clients: tuple[str, ...]
    names: tuple[str, ...] = ()
    compatible: bool = False
    package: str = ""

    @property
    def adapter_module(self) -> str:
        return f"{self.package or __name__ + '.' + self.family}.adapter"

    @property
    def wire_module(self) -> str:
        return f"{self.package or __name__ + '.' + self.family}.wire"


_BUILT_IN = (
    Provider("openai", "openai", ("OpenAI", "AsyncOpenAI"), names=("azure",), compatible=True),
    Provider("anthropic", "anthropic", ("Anthropic", "AsyncAnthropic"), names=("vertex",)),
    Provider("bedrock", "botocore.client", ("BaseClient",)),  # boto3 bedrock-runtime; Claude JSON too
    Provider("mistral", "mistralai", ()),  # clients moved between majors: the adapter patches BaseSDK
    Provider(
        "google", "google.genai", ("Client",), names=("vertex",)
    ),  # "vertex": Anthropic's for family_for(); a google-genai object is found by its SDK
)

_lock = module_lock(globals(), "_lock")
_registry: dict[str, Provider] = {p.family: p for p in _BUILT_IN}


def register(provider: Provider) -> None:
    """Meter ``provider``'s SDK from now on (its entry replaces one of the same family)."""
    with _lock:
        _registry[provider.family] = provider


def unregister(family: str) -> None:
    """Stop metering ``family``'s SDK in clients wrapped from now on (a no-op for one not registered)."""
    with _lock:
        _registry.pop(family, None)


def registered() -> tuple[Provider, ...]:
    """Every registered provider, in registration order."""
    with _lock:
        return tuple(_registry.values())


def family_for(provider: str) -> Provider:
    """The family whose records carry the provider name ``provider``: the family of that name, the one
    listing it in ``names``, else the one other servers imitate (an OpenAI-compatible host)."""
    entries = registered()
    for entry in entries:
        if provider == entry.family or provider in entry.names:
            return entry
    for entry in entries:
        if entry.compatible:
            return entry
    raise LookupError(f"no registered provider family reports {provider!r}")
