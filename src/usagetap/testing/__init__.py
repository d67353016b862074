"""Test doubles that ship with usagetap: a loopback provider server and an in-memory sink.

Fakes of the billing backends the sinks deliver to live in :mod:`usagetap.testing.backends`.

::

    from openai import OpenAI
    import usagetap
    from usagetap.testing import ProviderServer, recording

    with ProviderServer() as server, recording() as sink:
        client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="test"))
        with usagetap.customer("org_1"):
            client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert sink.records[0].customer == "org_1"
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .._runtime import configure, restore_configuration, saved_configuration
from ..sinks.memory import Memory
from ._server import Fault, Issued, ProviderServer, Reply

__all__ = ["Fault", "Issued", "Memory", "ProviderServer", "Reply", "recording"]


@contextlib.contextmanager
def recording(flush_interval: float = 0.05) -> Iterator[Memory]:
    """Send records to a fresh :class:`Memory` sink inside the block; flush it on exit.

    On exit the configuration in effect before the block is restored: its sinks and settings
    (records meant for them wait in the spool meanwhile), its customer policy and whether
    metering was on, or none, if nothing had been set up.
    """
    previous = saved_configuration()
    sink = Memory()
    configure(sink=sink, flush_interval=flush_interval)
    try:
        yield sink
    finally:
        restore_configuration(previous)
