"""The default target, the kit's mock gateway, served in a thread of this process on a free loopback port.

This module is the only place in `contracts` that imports `mockserver`: the in-thread server is the
mock's own (`mockserver.serving.ThreadedServer`, here `LiveServer`).
"""

from __future__ import annotations

from mockserver.config import Config
from mockserver.serving import ThreadedServer as LiveServer
from mockserver.web.app import create_app

__all__ = ["LiveServer", "start_mock"]


def start_mock(keys: tuple[str, ...]) -> LiveServer:
    """The default target: the kit's mock gateway, admin API on (so time and faults can be controlled)."""
    return LiveServer(create_app(Config(keys=keys, admin=True, retry_pause=False))).start()
