"""Serve gallery variants in a process of their own, each on a free loopback port, as a gateway is served.

    python -m tests.gallery.serve NAME [NAME ...]

Prints one JSON line, the URL of each NAME in order (a name may repeat: each gets a fresh mock), then
serves until its standard input closes. Every variant is the real mock (both contract keys, admin API
on, seed 1) with one small override.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence

from contracts.settings import MOCK_KEYS
from mockserver.config import Config
from mockserver.web.app import create_app
from tests.gallery.variants import VARIANTS
from tests.live import LiveServer


def main(names: Sequence[str]) -> int:
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        sys.stderr.write(f"unknown variant(s): {', '.join(unknown)}; known: {', '.join(sorted(VARIANTS))}\n")
        return 2
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(LiveServer(_app(name))) for name in names]
        sys.stdout.write(json.dumps([server.url for server in servers]) + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # serve until the parent closes our stdin (or dies)
    return 0


def _app(name: str) -> object:
    # the gateway's pauses between upstream attempts (1-3 s) would only make the gallery wait: what it proves
    # is which variants the suite catches, not how long a retried chat takes
    config = Config(keys=MOCK_KEYS, admin=True, seed=1, retry_pause=False)
    return VARIANTS[name].apply(create_app(config))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
