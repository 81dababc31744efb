"""The request body size limit: past it, 413 with a `{"detail": ...}` body, never passed to the app.

Before answering, the rest of the body is read and dropped (up to a bound): closing a connection with
unread data makes the kernel reset it, and a client still sending would never see the 413.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


DRAIN_AT_MOST = 16 * 1024 * 1024


class BodyLimit:
    """Refuses a body over `limit` bytes: at once when Content-Length says so, else as soon as it grows past it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.body = json.dumps({"detail": f"Request body too large: the limit is {limit} bytes"}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(receive, send)
            return
        received, started, complete = 0, False, False

        async def counted() -> Message:
            nonlocal received, complete
            message = await receive()
            received += len(message.get("body", b""))
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            if received > self.limit:
                raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(receive, send, more=not complete)

    async def _refuse(self, receive: Receive, send: Send, *, more: bool = True) -> None:
        drained = 0
        while more and drained <= DRAIN_AT_MOST:
            message = await receive()
            drained += len(message.get("body", b""))
            more = message["type"] == "http.request" and message.get("more_body", False)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": [*headers, (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": self.body})
