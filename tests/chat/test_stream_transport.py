"""The stream on the wire: frames sent as they are made, on both paths, and a client that leaves is noticed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

from starlette.testclient import TestClient

from mockserver.web.pipeline import LEFT_MID_STREAM, send_stream
from tests.chat.helpers import CHAT_PATH, HELLO, frames, queue
from tests.web.helpers import auth


def test_the_full_stack_streams_too(client: TestClient) -> None:
    """A request with an Origin takes the full stack (CORS): the same stream, frame by frame."""
    queue(client, content="a b", chunk_delay=0.01)
    headers = {"Origin": "https://app.example", **auth()}
    body = {"model": "mistral-31-24b", "messages": HELLO, "stream": True}
    answer = client.post(CHAT_PATH, json=body, headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/event-stream; charset=utf-8"
    *chunks, done = frames(answer.text)
    assert ("".join(json.loads(c)["choices"][0]["delta"].get("content") or "" for c in chunks), done) == (
        "a b",
        "[DONE]",
    )


def test_a_client_that_leaves_stops_the_stream_and_is_marked() -> None:
    sent: list[dict[str, Any]] = []
    scope: dict[str, Any] = {}

    async def made() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        await asyncio.sleep(30)  # the client leaves while this frame is being made
        yield b"data: 2\n\n"

    messages: Iterator[dict[str, Any]] = iter([{"type": "http.request"}, {"type": "http.disconnect"}])

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return next(messages)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    asyncio.run(asyncio.wait_for(send_stream(scope, made(), receive, send), 5))
    assert [message["body"] for message in sent] == [b"data: 1\n\n"]
    assert scope[LEFT_MID_STREAM] is True
