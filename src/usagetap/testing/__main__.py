"""``python -m usagetap.testing [--port N]``: run the loopback provider in its own process.

Prints the base URL on the first line of stdout, then serves until killed.
"""

from __future__ import annotations

import argparse
import sys
import threading

from ._server import ProviderServer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m usagetap.testing", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stream-delay", type=float, default=0.0, help="seconds between SSE events")
    args = parser.parse_args()
    server = ProviderServer(port=args.port, impersonate=None, stream_delay=args.stream_delay)
    server.record_requests = False
    server.start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
