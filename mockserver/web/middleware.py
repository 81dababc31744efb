"""ASGI middleware: the gateway's X-Process-Time header, the request journal, and the direct path.

A request for one of the spec's operations that needs nothing of the stack below (no `Origin`, so
CORS adds nothing; a declared body within the size limit, so the limit has nothing to count) goes
straight to its endpoint: no router scan, no CORS or limit wrappers, no exception middleware. Its
answer is the one the full stack gives, byte for byte; everything else takes the full stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.domain import JournalEntry, key_prefix
from mockserver.logbatch import direct
from mockserver.store import StoreError
from mockserver.web.admin import PREFIX as ADMIN_PREFIX
from mockserver.web.pipeline import CLIENT_CLOSED, LEFT_MID_STREAM, UPSTREAM_CALLS, OperationEndpoint, send_stream
from mockserver.web.state import MockState

logger = logging.getLogger("mockserver")
ACCESS_LOG = logging.getLogger("mockserver.access")
DASHBOARD_HEADER = b"x-mock-dashboard"


class GatewayMiddleware:
    """Adds `X-Process-Time` to every response and journals every request (keys by prefix only)."""

    def __init__(self, app: ASGIApp, state: MockState, endpoints: Mapping[tuple[str, str], OperationEndpoint]) -> None:
        self.app = app
        self.state = state
        self.operations = {(op.method, op.path): op.operation_id for op in state.spec.operations}
        self.endpoints = endpoints
        self.limit = state.config.max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        view = self.state.view
        key = shown_key(authorization_of(scope)) if view.reads_ahead else None
        with view.fresh(key):  # with --store: one look at the admin state's token and the key's record
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        endpoint = self.endpoints.get((scope["method"], scope["path"]))
        if endpoint is not None and self._direct(scope["headers"]):
            await self._serve(endpoint, scope, receive, send, started)
            return
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = str(time.perf_counter() - started).encode()
                message["headers"] = [*message.get("headers", []), (b"x-process-time", elapsed)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._journal(scope, status, started)

    async def _serve(
        self, endpoint: OperationEndpoint, scope: Scope, receive: Receive, send: Send, started: float
    ) -> None:
        """The direct path: the endpoint's answer, sent as the full stack would send it."""
        status = 500
        try:
            status, headers, body = await endpoint.serve(scope, receive)
            headers.append((b"x-process-time", str(time.perf_counter() - started).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if isinstance(body, bytes):
                await send({"type": "http.response.body", "body": body})
            else:
                await send_stream(scope, body, receive, send)
        finally:
            self._journal(scope, status, started)

    def _direct(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether the layers below would only pass this request through (no Origin, a body within the limit)."""
        declared = b""
        for name, value in headers:
            if name == b"origin" or name == b"transfer-encoding":
                return False
            if name == b"content-length":
                declared = value
        return not self.limit or (declared.isdigit() and int(declared) <= self.limit)

    def _journal(self, scope: Scope, status: int, started: float) -> None:
        """Journal the request and log its access line; the dashboard's own polls are neither."""
        if scope["path"].startswith(ADMIN_PREFIX) and dashboard_poll(scope):
            return
        try:
            entry = self._entry(scope, status)  # the entry's time comes from the clock, which may be the store's
            self.state.journal.record(entry)
        except StoreError as error:  # the answer is sent; only its journal entry is lost
            logger.warning("request not journaled: %s", error)
            return
        if ACCESS_LOG.isEnabledFor(logging.INFO):
            access_log(entry, time.perf_counter() - started)

    def _entry(self, scope: Scope, status: int) -> JournalEntry:
        path = scope["path"]
        return JournalEntry(
            at=self.state.clock.now(),
            method=scope["method"],
            path=path,
            query=unquote(scope.get("query_string", b"").decode("latin-1")),
            key=shown_key(authorization_of(scope)),
            operation_id=self.operations.get((scope["method"], path)),
            status=CLIENT_CLOSED if scope.get(LEFT_MID_STREAM) else status,
            upstream=scope.get(UPSTREAM_CALLS, ()),
        )


def access_log(entry: JournalEntry, elapsed: float) -> None:
    """One line per request at INFO: method, path, status, key prefix (or -) and time taken; what the client
    sent (path, query, the key's prefix) cannot start a line of its own: checked in one pass, escaped if needed.

    Served, the line goes straight to the handler's batch (`logbatch.direct`); anywhere else it is
    `Logger.info` without its search of the stack for the caller (the record names this function).
    """
    target = f"{entry.path}?{entry.query}" if entry.query else entry.path
    line = _ACCESS_LINE % (entry.method, target, entry.status, entry.key or "-", elapsed * 1000)
    if not line.isprintable():  # the client's path, query or key holds a newline or a terminal escape
        line = printable(line)
    handler = direct(ACCESS_LOG, logging.INFO)
    if handler is not None:  # served: straight into the turn's batch, no LogRecord
        handler.write(logging.INFO, line)
        return
    ACCESS_LOG.handle(ACCESS_LOG.makeRecord(ACCESS_LOG.name, logging.INFO, __file__, _LINE, line, (), None))


def printable(text: str) -> str:
    """`text` with every character that could end a log line or forge one (newlines, terminal escapes, any
    other control or separator character) written as its Python escape: `\\n`, `\\x1b`, `\\u2028`."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


_ACCESS_LINE = "%s %s %d key=%s %.1f ms"
_LINE = access_log.__code__.co_firstlineno


def dashboard_poll(scope: Scope) -> bool:
    """Whether the admin dashboard sent this request to refresh itself (`X-Mock-Dashboard: poll`)."""
    return (DASHBOARD_HEADER, b"poll") in scope["headers"]


def authorization_of(scope: Scope) -> str | None:
    """`Headers(scope=scope).get("authorization")` without building Headers (ASGI header names are lowercase)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return None


def shown_key(authorization: str | None) -> str | None:
    """The 9-character prefix of whatever key-like value the header holds; never the full key."""
    if not authorization:
        return None
    value = authorization.removeprefix("Bearer ").strip()
    return key_prefix(value) if value.startswith("sk-") else None


__all__ = ["GatewayMiddleware", "shown_key"]
