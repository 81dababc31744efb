"""A server in a thread of this process on a free loopback port; and the default target, the mock.

`start_mock` is the only place in `contracts` that imports `mockserver`.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import uvicorn


class LiveServer:
    """`with LiveServer(app) as server: ... server.url ...`; binds 127.0.0.1 only and stops cleanly."""

    def __init__(self, app: Any, host: str = "127.0.0.1", **options: Any) -> None:
        """`options` go to uvicorn.Config (for example `http=` a protocol class)."""
        config = uvicorn.Config(app, host=host, port=0, log_level="warning", lifespan="on", access_log=False, **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name="uvicorn", daemon=True)
        self.host = host
        self.port = 0
        self.failure = ""  # why the server stopped before it started, when it said so

    def _serve(self) -> None:
        try:
            self.server.run()
        except SystemExit as stopped:  # uvicorn's way out when it cannot bind or the app's start-up fails
            self.failure = f" (uvicorn exited with {stopped.code})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the in-process server did not start{self.failure}")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def start_mock(keys: tuple[str, ...]) -> LiveServer:
    """The default target: the kit's mock gateway, admin API on (so time and faults can be controlled)."""
    from mockserver.config import Config
    from mockserver.web.app import create_app

    return LiveServer(create_app(Config(keys=keys, admin=True, retry_pause=False))).start()
