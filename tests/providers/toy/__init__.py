"""A toy provider: everything usagetap needs to meter a new SDK family, registered with one line.

Its parts are a built-in provider's: ``usage.py`` (pure extraction), ``adapter.py`` (which calls
are billable, how to observe a stream) and ``wire.py`` (its loopback wire format). The SDK it
meters is :mod:`tests.providers.toy_sdk`.
"""

from usagetap.providers import Provider

TOY = Provider("toy", "tests.providers.toy_sdk", ("Toy",), package=__name__)
"""The toy's registry line: ``usagetap.providers.register(TOY)``."""
