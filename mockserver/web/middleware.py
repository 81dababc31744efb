"""ASGI middleware: the gateway's X-Process-Time header, and the request journal."""

from __future__ import annotations

import logging
import time
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.domain import key_prefix
from mockserver.web.admin import PREFIX as ADMIN_PREFIX
from mockserver.web.journal import Journal, JournalEntry
from mockserver.web.state import MockState

ACCESS_LOG = logging.getLogger("mockserver.access")
DASHBOARD_HEADER = b"x-mock-dashboard"


class GatewayMiddleware:
    """Adds `X-Process-Time` to every response and journals every request (keys by prefix only)."""

    def __init__(self, app: ASGIApp, state: MockState) -> None:
        self.app = app
        self.state = state
        self.operations = {(op.method, op.path): op.operation_id for op in state.spec.operations}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
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
            if not (scope["path"].startswith(ADMIN_PREFIX) and dashboard_poll(scope)):  # its polls: not recorded
                entry = self._journal(scope, status)
                if ACCESS_LOG.isEnabledFor(logging.INFO):
                    access_log(entry, time.perf_counter() - started)

    def _journal(self, scope: Scope, status: int) -> JournalEntry:
        path = scope["path"]
        entry = JournalEntry(
            at=self.state.clock.now(),
            method=scope["method"],
            path=path,
            query=unquote(scope.get("query_string", b"").decode("latin-1")),
            key=shown_key(authorization_of(scope)),
            operation_id=self.operations.get((scope["method"], path)),
            status=status,
        )
        self.state.journal.record(entry)
        return entry


def access_log(entry: JournalEntry, elapsed: float) -> None:
    """One line per request at INFO: method, path, status, key prefix (or -) and time taken."""
    target = f"{entry.path}?{entry.query}" if entry.query else entry.path
    ACCESS_LOG.info("%s %s %d key=%s %.1f ms", entry.method, target, entry.status, entry.key or "-", elapsed * 1000)


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


__all__ = ["GatewayMiddleware", "Journal", "shown_key"]
