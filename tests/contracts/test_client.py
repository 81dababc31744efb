"""The contract suite's HTTP client and helpers: rate limit, 429 handling, redaction, the oracle's expiry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.client import MAX_RETRY_AFTER, Client, GatewaySession, RateLimiter, retry_after
from contracts.oracle import MARGIN, Life, Oracle
from contracts.redact import curl, redact
from contracts.safety import Ledger
from tests.live import LiveServer

KEY = "sk-AbC123." + "0123456789abcdef" * 4


def test_rate_limiter_spaces_requests() -> None:
    now = [100.0]
    limiter = RateLimiter(4, clock=lambda: now[0])
    assert [limiter.delay() for _ in range(3)] == [0.0, 0.25, 0.5]
    now[0] = 200.0
    assert limiter.delay() == 0.0
    assert RateLimiter(None).delay() == 0.0


@pytest.mark.parametrize(
    ("header", "seconds"), [("3", 3.0), (None, 1.0), ("soon", 1.0), ("-5", 0.0), ("9999", MAX_RETRY_AFTER)]
)
def test_retry_after_is_read_and_bounded(header: str | None, seconds: float) -> None:
    response = requests.Response()
    response.status_code = 429
    if header is not None:
        response.headers["Retry-After"] = header
    assert retry_after(response) == seconds


@pytest.fixture
def busy_server() -> Iterator[LiveServer]:
    calls: list[int] = []

    async def busy(request: Request) -> Response:
        calls.append(1)
        if len(calls) < 3:
            return JSONResponse({"detail": "slow down"}, status_code=429, headers={"Retry-After": "2"})
        return JSONResponse({"ok": True})

    with LiveServer(Starlette(routes=[Route("/busy", busy, methods=["POST"])])) as server:
        yield server


def test_a_429_is_retried_after_its_retry_after(busy_server: LiveServer) -> None:
    slept: list[float] = []
    session = GatewaySession(RateLimiter(None), sleep=slept.append)
    assert session.post(f"{busy_server.url}/busy").json() == {"ok": True}
    assert [seconds for seconds in slept if seconds] == [2.0, 2.0]


def test_the_client_logs_every_request_as_redacted_curl(busy_server: LiveServer) -> None:
    client = Client(busy_server.url, [KEY], None)
    client.session.sleep = lambda seconds: None
    ledger = Ledger(cap=1)
    client.session.listeners.append(ledger.observe)
    client.post("/busy", key=KEY, json={"a": 1})
    assert client.sent == 1
    assert client.log == [
        f"curl -X POST {busy_server.url}/busy -H 'Authorization: Bearer sk-AbC123…' "
        "-H 'Content-Type: application/json' -d '{\"a\": 1}'    # -> 200"
    ]
    assert ledger.keys_used == {KEY}
    assert ledger.may_open()


def test_redaction_cuts_keys_to_their_prefix() -> None:
    assert redact(f"Bearer {KEY} and sk-Other1.deadbeef", [KEY]) == "Bearer sk-AbC123… and sk-Other1…"
    assert curl("GET", "http://h/x", {"Authorization": KEY, "Accept": "*/*"}, None) == (
        "curl -X GET http://h/x -H 'Authorization: sk-AbC123…'"
    )


def test_the_oracle_accepts_either_answer_close_to_the_expiry() -> None:
    oracle = Oracle(models={"m": "0xm"}, default_model=None)
    oracle.opened("k", "0x1", "model", "0xm", expires_at=1000.0)
    assert oracle.life("k", 1000.0 - MARGIN - 1) is Life.ALIVE
    assert oracle.life("k", 1000.0) is Life.EITHER
    assert oracle.life("k", 1000.0 + MARGIN + 1) is Life.EXPIRED
    assert oracle.reusable("k", "m", 10.0) == "0x1"
    assert oracle.reusable("k", "unknown", 10.0) is None  # no default model: an unknown name means nothing
    oracle.forget("k", "R4")
    assert (oracle.life("k", 10.0), oracle.book("k").ended_by) == (Life.NONE, "R4")
