"""ASGI middleware: the gateway's X-Process-Time header, the request journal, and the direct path.

A request for one of the spec's operations that needs nothing of the stack below (no `Origin`, so
CORS adds nothing; a declared body within the size limit, so the limit has nothing to count) goes
straight to its endpoint: no router scan, no CORS or limit wrappers, no exception middleware. Its
answer is the one the full stack gives, byte for byte; everything else takes the full stack.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.domain import JournalEntry, key_prefix
from mockserver.domain.keys import BEARER
from mockserver.logbatch import direct
from mockserver.store import StoreError
from mockserver.web.admin import PREFIX as ADMIN_PREFIX
from mockserver.web.pipeline import CLIENT_CLOSED, LEFT_MID_STREAM, UPSTREAM_CALLS, OperationEndpoint, send_stream
from mockserver.web.state import MockState

logger = logging.getLogger("mockserver")
ACCESS_LOG = logging.getLogger("mockserver.access")
DASHBOARD_HEADER = b"x-mock-dashboard"
KEY_SHOWN = "morpheus.key_shown"  # the scope's `ShownKey | None`, set once per request by `GatewayMiddleware`
_WHOLE_KEY = re.compile(r"sk-[A-Za-z0-9]{6}[.][0-9A-Za-z]+")


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
        shown = scope[KEY_SHOWN] = shown_key(authorization_of(scope))  # read once; the journal and a recording use it
        view = self.state.view
        async with view.fresh(
            shown.prefix if shown is not None and view.reads_ahead else None
        ):  # with --store: one look at the admin state's token and the key's record
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
            key=None if scope[KEY_SHOWN] is None else scope[KEY_SHOWN].prefix,
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


@dataclass(frozen=True, slots=True)
class ShownKey:
    """What a request's Authorization header shows of a key, for the journal, the access log and a recording
    (`scope[KEY_SHOWN]`): the key-like value it holds and its 9-character prefix. The gateway's own reading,
    which decides whether the key is let in, is `parse_authorization`."""

    value: str
    prefix: str

    @property
    def whole(self) -> str | None:
        """The value, when it is a whole key (`sk-XXXXXX.` and a secret), not a bare or broken one."""
        return self.value if _WHOLE_KEY.fullmatch(self.value) else None


def shown_key(authorization: str | None) -> ShownKey | None:
    """The header's value after `Bearer ` (and white space), when it looks like a key (`sk-...`); else None."""
    if not authorization:
        return None
    value = authorization.removeprefix(BEARER).strip()
    if not value.startswith("sk-"):
        return None
    return ShownKey(value, key_prefix(value))


__all__ = ["KEY_SHOWN", "GatewayMiddleware", "ShownKey", "shown_key"]
