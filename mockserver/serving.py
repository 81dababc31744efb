"""Serving an ASGI app with uvicorn: the listening socket, the HTTP protocol, the start-up banner, and the
one in-thread server (the fixture's mock, the contract suite's in-process target, the tests' live servers).

`__main__` is the command line only; everything it serves with lives here, so library code never
imports `__main__`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from mockserver.config import Config
from mockserver.domain import DEFAULT_MODEL, key_prefix
from mockserver.web.app import app_from_environment
from mockserver.web.protocol import JsonErrorsH11, JsonErrorsHttpTools

LOOPBACK = "127.0.0.1"
DEMO_KEY = "sk-Demo01." + "0123456789abcdef" * 4  # `make mock`'s public key: the banner prints it whole


def frozen(app: Any) -> Any:
    """`app`, with everything the process has built so far moved out of the collector's way (`gc.freeze`).

    The spec, its schemas and validators and the app live as long as the process; a full collection that
    walked them paused a served `--store` worker about 40 ms, which was its p99 (64 keys in turn, 1 worker:
    35 ms, 18-19 ms frozen). Called once the app is built, before it serves.
    """
    gc.collect()
    gc.freeze()
    return app


def worker_app() -> Any:
    """The app of one worker process (`--workers N`, uvicorn's factory), frozen like a single worker's."""
    return frozen(app_from_environment())


class ServerDidNotStart(RuntimeError):
    """An in-thread server that did not come up (its start-up failed, or it took too long)."""


def banner(config: Config, key_count: int, url: str) -> str:
    """What the mock prints on start: where it listens, its keys, and a curl that works."""
    authorization, where = _curl_key(config.keys[0] if config.keys else None)
    lines = [
        f"Morpheus mock gateway (session API of v1.14.0) on {url}",
        f"  keys: {key_count} registered" + (", and any well-formed key is accepted" if config.accept_any_key else ""),
        f"  API docs: {url}/docs; admin dashboard: {url}/__admin"
        if config.admin
        else f"  API docs: {url}/docs; admin API: off (--admin to enable)",
        f"  try{where}:",
        f"    curl -X POST '{url}/api/v1/session/modelsession?model_id={DEFAULT_MODEL}' \\",
        f"      -H {authorization} -H 'Content-Type: application/json' \\",
        """      -d '{"sessionDuration": 3600, "directPayment": false, "failover": false}'""",
    ]
    return "\n".join(lines)


def _curl_key(key: str | None) -> tuple[str, str]:
    """The curl's Authorization header, and what the `try` line says of it. A key is printed by its prefix only
    (the curl reads it from $KEY); the public demo key of `make mock` is printed whole, so its curl works as is."""
    if key is None:
        return "'Authorization: Bearer <your key>'", ""
    if key == DEMO_KEY:
        return f"'Authorization: Bearer {key}'", ""
    return '"Authorization: Bearer $KEY"', f" (with KEY set to your key {key_prefix(key)}…)"


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket, made with its protocol named (IPPROTO_TCP); `reuse_port`: one of several that
    share the port (SO_REUSEPORT, `mockserver.workers`).

    asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections of a socket whose
    protocol is IPPROTO_TCP; `socket.create_server` leaves it 0, and every answer uvicorn writes in
    two parts then waited for the client's delayed ACK: 40 ms a request without uvloop.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name not in ("nt", "cygwin"):  # pragma: no branch - the kit is served on POSIX hosts
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as socket.create_server does
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def stop_quietly() -> None:
    """uvicorn shuts down gracefully on SIGTERM/SIGINT (in-flight requests finish), then re-raises the signal to the
    handler that was there before it: a no-op from here on, so that a requested stop exits 0 (not killed by it)."""
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: None)


def http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's fastest HTTP protocol here (httptools, else h11), answering unparsable requests in JSON."""
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - httptools is a dependency; h11 is uvicorn's own fallback
        return JsonErrorsH11
    return JsonErrorsHttpTools


class ThreadedServer:
    """uvicorn in a daemon thread of this process on a free port of `host` (loopback unless told):
    `with ThreadedServer(app) as server: ... server.url ...`; stops cleanly, forced when requests hold it up."""

    def __init__(self, app: Any, host: str = LOOPBACK, **options: Any) -> None:
        """`options` go to uvicorn.Config (for example `http=` a protocol class, `lifespan="off"`)."""
        settings: dict[str, Any] = {"log_level": "warning", "lifespan": "on", "access_log": False, **options}
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, **settings))
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

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        """Serve; ServerDidNotStart when the server is not up within `timeout` seconds (it may still be starting)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ServerDidNotStart(f"the in-process server did not start{self.failure}")
            time.sleep(0.005)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
