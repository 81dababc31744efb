"""The body size limit (413), a client that leaves mid-request (499), and JSON 400s for unparsable requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from mockserver.config import Config
from mockserver.domain import immediate
from mockserver.web.app import create_app
from mockserver.web.limits import BodyLimit, BodyTooLarge
from mockserver.web.protocol import JsonErrorsH11, JsonErrorsHttpTools
from tests.conftest import KEY, ClientFactory
from tests.live import LiveServer
from tests.served import send_raw

MODEL = "/api/v1/session/modelsession"
TOO_LARGE = {"detail": "Request body too large: the limit is 100 bytes"}


def test_a_declared_body_over_the_limit_is_refused_unread(make_client: ClientFactory) -> None:
    client = make_client(max_body_size=100)
    response = client.post(MODEL, params={"model_id": "m"}, content=b" " * 101, headers={"Authorization": KEY})
    assert (response.status_code, response.json()) == (413, TOO_LARGE)
    assert "x-process-time" in response.headers


def test_a_streamed_body_is_refused_when_it_grows_past_the_limit(make_client: ClientFactory) -> None:
    client = make_client(max_body_size=100)

    def chunks() -> Iterator[bytes]:
        yield from (b" " * 60, b" " * 60)

    response = client.post(MODEL, params={"model_id": "m"}, content=chunks(), headers={"Authorization": KEY})
    assert (response.status_code, response.json()) == (413, TOO_LARGE)


def test_a_body_within_the_limit_and_no_limit_at_all(make_client: ClientFactory) -> None:
    assert (
        make_client(max_body_size=100)
        .post(MODEL, params={"model_id": "m"}, json={}, headers={"Authorization": KEY})
        .status_code
        == 200
    )
    unlimited = make_client(max_body_size=0)
    assert (
        unlimited.post(
            MODEL, params={"model_id": "m"}, content=b" " * 2_000_000 + b"{}", headers={"Authorization": KEY}
        ).status_code
        == 200
    )


def test_an_answer_already_started_cannot_become_a_413() -> None:
    async def answers_first(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await receive()

    async def body() -> Message:
        return {"type": "http.request", "body": b"x" * 10, "more_body": False}

    sent: list[Message] = []

    async def keep(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": [], "method": "POST", "path": "/"}
    with pytest.raises(BodyTooLarge):
        asyncio.run(BodyLimit(answers_first, 5)(scope, body, keep))
    assert [message["status"] for message in sent] == [200]


def test_non_http_scopes_pass_the_limit() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def nothing() -> Message:
        return {}

    async def ignore(message: Message) -> None:
        return None

    asyncio.run(BodyLimit(app, 5)({"type": "lifespan"}, nothing, ignore))
    assert seen == ["lifespan"]


def test_a_client_that_leaves_before_its_body_is_journaled_as_499() -> None:
    app = create_app(Config(keys=(KEY,), admin=True))
    sent: list[Message] = []

    async def gone() -> Message:
        return {"type": "http.disconnect"}

    async def keep(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "POST", "path": MODEL, "raw_path": MODEL.encode(), "query_string": b"model_id=m",
        "headers": [(b"authorization", KEY.encode()), (b"content-type", b"application/json")],
        "http_version": "1.1", "scheme": "http", "server": ("mock", 80), "client": ("127.0.0.1", 1), "root_path": "",
    }  # fmt: skip
    asyncio.run(_call(app, scope, gone, keep))
    assert sent[0]["status"] == 499
    assert immediate(app.state.mock.journal.entries(limit=1))[0]["status"] == 499


async def _call(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
    await app(scope, receive, send)


@pytest.mark.parametrize("protocol", [JsonErrorsHttpTools, JsonErrorsH11], ids=["httptools", "h11"])
def test_an_unparsable_request_gets_a_json_400(protocol: type) -> None:
    with LiveServer(create_app(Config(keys=(KEY,))), http=protocol) as server:
        status, headers, body = send_raw(server.host, server.port, b"GARBAGE\r\n\r\n")
    assert (status, headers["content-type"], json.loads(body)) == (
        400,
        "application/json",
        {"detail": "Invalid HTTP request received."},
    )


def test_draining_a_refused_body_stops_at_a_bound(monkeypatch: pytest.MonkeyPatch, make_client: ClientFactory) -> None:
    monkeypatch.setattr("mockserver.web.limits.DRAIN_AT_MOST", 150)
    client = make_client(max_body_size=100)

    def chunks() -> Iterator[bytes]:
        yield from [b" " * 60] * 6  # refused at 120 bytes, drained to 180, then answered

    response = client.post(MODEL, params={"model_id": "m"}, content=chunks(), headers={"Authorization": KEY})
    assert (response.status_code, response.json()) == (413, TOO_LARGE)
