"""`--workers N` (`mockserver.workers`): each worker listens on a socket of its own on the one port, so the kernel
spreads connections over them; a worker that exits is replaced on its socket; a worker that cannot start stops
them all; a port in use is refused even when its sockets share it the same way."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from mockserver.serving import LOOPBACK, listen
from mockserver.workers import Workers, listeners

OPTIONS = {"log_level": "warning", "access_log": False, "lifespan": "off"}
CONNECTIONS = 64  # all on one of two sockets: one chance in 2**63


def pid_app() -> Callable[..., Any]:
    """The app of the workers under test: it answers its process id."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = json.dumps({"pid": os.getpid()}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    return app


def built_app() -> Callable[..., Any]:
    """The app of the workers under test: it answers its process id and when it was built (the worker's start)."""
    built = time.time()

    async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = json.dumps({"pid": os.getpid(), "built": built}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    return answer


def test_two_workers_sockets_share_one_port_and_each_gets_connections() -> None:
    sockets = listeners(LOOPBACK, 0, 2)
    port = sockets[0].getsockname()[1]
    assert [sock.getsockname()[1] for sock in sockets] == [port, port]
    assert all(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for sock in sockets)
    clients = [socket.create_connection((LOOPBACK, port)) for _ in range(CONNECTIONS)]
    accepted = [0, 0]
    while sum(accepted) < CONNECTIONS:
        ready, _, _ = select.select(sockets, [], [], 5)
        assert ready, f"connections accepted: {accepted} of {CONNECTIONS}"
        for sock in ready:
            sock.accept()[0].close()
            accepted[sockets.index(sock)] += 1
    assert min(accepted) > 0, accepted
    for sock in [*sockets, *clients]:
        sock.close()


def test_one_worker_listens_on_one_plain_socket() -> None:
    (sock,) = listeners(LOOPBACK, 0, 1)
    assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    sock.close()


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_port_in_use_is_refused_even_when_its_sockets_share_it(reuse_port: bool) -> None:
    taken = listen(LOOPBACK, 0, reuse_port=reuse_port)  # another mock's, of the same user
    with pytest.raises(OSError, match="in use"):
        listeners(LOOPBACK, taken.getsockname()[1], 2)
    taken.close()


def test_a_second_socket_that_cannot_share_the_port_closes_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[socket.socket] = []

    def failing(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
        if made:
            raise OSError("the port cannot be shared")
        made.append(listen(host, port, reuse_port=reuse_port))
        return made[0]

    monkeypatch.setattr("mockserver.workers.listen", failing)
    with pytest.raises(OSError, match="cannot be shared"):
        listeners(LOOPBACK, 0, 2)
    assert made[0].fileno() == -1  # closed


def _pids(port: int) -> set[int]:
    """Which workers answered CONNECTIONS requests, each on a new connection."""
    return {requests.get(f"http://{LOOPBACK}:{port}/", timeout=5).json()["pid"] for _ in range(CONNECTIONS)}


def test_workers_serve_on_their_sockets_and_one_that_exits_is_replaced_on_its_socket(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    sockets = listeners(LOOPBACK, 0, 2)
    port = sockets[0].getsockname()[1]
    workers = Workers(sockets, f"{__name__}:pid_app", OPTIONS)
    seen: dict[str, Any] = {}

    def check() -> None:
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    first = seen["first"] = _pids(port)
                    if len(first) == 2:
                        break
                except requests.ConnectionError:  # not both up yet
                    time.sleep(0.1)
            os.kill(min(seen["first"]), signal.SIGKILL)
            time.sleep(1.0)  # the supervisor looks every 0.2 s, then the new worker starts
            while len(seen.setdefault("after", set()) - seen["first"]) == 0 and time.monotonic() < deadline:
                try:
                    seen["after"] = _pids(port)  # connections to the dead worker's socket would wait for nobody
                except requests.ConnectionError:
                    time.sleep(0.1)
        finally:
            workers.stopping.set()

    checker = threading.Thread(target=check)
    checker.start()
    assert workers.run() == 0
    checker.join()
    assert len(seen["first"]) == 2  # both workers got connections
    assert len(seen["after"]) == 2
    assert max(seen["first"]) in seen["after"]  # the live one still serves; the dead one's socket, its successor
    assert f"worker {min(seen['first'])} exited (code -9): starting another" in caplog.text
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # run()'s are gone
    for sock in sockets:
        sock.close()


def test_ready_is_said_once_every_worker_serves() -> None:
    """A connection the kernel gives a worker still starting would wait for it: the banner waits for them all."""
    sockets = listeners(LOOPBACK, 0, 2)
    workers = Workers(sockets, f"{__name__}:built_app", OPTIONS)
    seen: dict[str, Any] = {}

    def ready() -> None:
        seen["ready"] = time.time()
        url = f"http://{LOOPBACK}:{sockets[0].getsockname()[1]}/"
        seen["answers"] = [requests.get(url, timeout=5).json() for _ in range(CONNECTIONS)]
        workers.stopping.set()

    assert workers.run(ready) == 0
    assert len({answer["pid"] for answer in seen["answers"]}) == 2
    assert max(answer["built"] for answer in seen["answers"]) <= seen["ready"]
    for sock in sockets:
        sock.close()


def test_a_worker_that_cannot_start_stops_the_others(caplog: pytest.LogCaptureFixture) -> None:
    sockets = listeners(LOOPBACK, 0, 2)
    started = time.monotonic()
    assert Workers(sockets, f"{__name__}:no_such_app", OPTIONS).run() == 1
    assert time.monotonic() - started < 30
    assert "could not start (see above): stopping the others" in caplog.text
    for sock in sockets:
        sock.close()
