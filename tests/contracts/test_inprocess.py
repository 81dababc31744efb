"""The suite's in-process server: it says so when the app cannot start (its lifespan fails, or it does not
come up in time), and a stop that in-flight requests hold up still ends the server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.inprocess import LiveServer


def _app_whose_start(fails: bool, started: threading.Event | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if fails:
            raise OSError("the store is unreachable")
        while started is not None and not started.is_set():
            await asyncio.sleep(0.01)
        yield

    return Starlette(lifespan=lifespan)


@pytest.mark.parametrize(
    ("app", "host"),
    [
        (_app_whose_start(fails=True), "127.0.0.1"),  # the mock dies in its lifespan
        (Starlette(), "192.0.2.1"),  # an address no interface has (TEST-NET-1): nothing can be bound
    ],
    ids=["lifespan-fails", "cannot-bind"],
)
def test_a_server_that_dies_at_start_up_is_reported_not_waited_for(app: Starlette, host: str) -> None:
    server = LiveServer(app, host=host)
    with pytest.raises(RuntimeError, match=r"^the in-process server did not start \(uvicorn exited with [13]\)$"):
        server.start(timeout=30)
    assert not server.thread.is_alive()


def test_an_app_that_does_not_come_up_in_time_is_reported() -> None:
    release = threading.Event()
    server = LiveServer(_app_whose_start(fails=False, started=release))
    try:
        with pytest.raises(RuntimeError, match="the in-process server did not start"):
            server.start(timeout=0.2)
        assert server.thread.is_alive()  # still starting: the caller was told, not kept waiting
    finally:
        release.set()
        server.stop()
    assert not server.thread.is_alive()


def test_a_stop_held_up_by_a_request_in_flight_forces_the_exit() -> None:
    entered, leave = threading.Event(), threading.Event()

    async def slow(request: Request) -> Response:
        entered.set()
        while not leave.is_set():
            await asyncio.sleep(0.01)
        return JSONResponse({})

    server = LiveServer(Starlette(routes=[Route("/slow", slow)])).start()
    caller = threading.Thread(target=lambda: _get_quietly(f"{server.url}/slow"), daemon=True)
    caller.start()
    try:
        assert entered.wait(10)
        server.stop(timeout=0.3)  # the graceful stop waits for the request; the forced one does not
        assert not server.thread.is_alive()
    finally:
        leave.set()
        caller.join(10)


def _get_quietly(url: str) -> None:
    with contextlib.suppress(requests.RequestException):
        requests.get(url, timeout=10)
