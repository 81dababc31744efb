"""Broken gateways: each is the real mock with one small, named override.

A variant takes the real mock app and returns the broken one. Behaviour bugs swap one domain object's
class for a subclass that overrides one method (or replace its clock or store); shape bugs rewrite one
kind of response on its way out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.domain import (
    CloseKind,
    CloseOutcome,
    InMemoryStore,
    KeyRegistry,
    PingKind,
    PingOutcome,
    Session,
    SessionBook,
)
from mockserver.domain.book import Armed
from mockserver.domain.store import Change, Ended, T

Apply = Callable[[Starlette], ASGIApp]


@dataclass(frozen=True)
class Variant:
    name: str
    rule: str  # the rule (R1-R8) or contract part it breaks
    breaks: str  # what a real gateway would get wrong
    apply: Apply


def _swap(attribute: str, cls: type) -> Apply:
    def apply(app: Starlette) -> ASGIApp:
        getattr(app.state.mock, attribute).__class__ = cls
        return app

    return apply


# --- behaviour: the session rules ------------------------------------------------------------------


class ReuseOpensNew(SessionBook):
    def create_model_session(self, key: str, requested: str, resolved: str, duration: int, **faults: Any) -> Session:
        self.store.reset(key)  # forgets the key's session, so a same-model create opens another one
        return super().create_model_session(key, requested, resolved, duration, **faults)


class SwitchKeepsOld(SessionBook):
    def create_model_session(self, key: str, requested: str, resolved: str, duration: int, **faults: Any) -> Session:
        current = self.store.active(key)
        if current is not None and not current.is_expired(self.clock.now()):
            return current  # any model reuses the current session
        return super().create_model_session(key, requested, resolved, duration, **faults)


class BidLeavesOldActive(SessionBook):
    def create_bid_session(self, key: str, bid_id: str, duration: int, **faults: Any) -> Session:
        old = self.store.active(key)
        opened = super().create_bid_session(key, bid_id, duration, **faults)
        if old is not None:
            self.store.transact(key, lambda current: (old, None))  # the old one is still the key's session
        return opened


class CloseKeepsSession(SessionBook):
    def close(self, key: str, *, fail: bool | Armed[bool] = False) -> CloseOutcome:
        current = self.store.active(key)
        if current is None:
            return super().close(key, fail=fail)
        return CloseOutcome(CloseKind.CLOSED, current.session_id)  # reports success, keeps the session


class DeadPingKeepsSession(SessionBook):
    def ping(self, key: str, *, dead: Any = None, error: Any = None) -> PingOutcome:
        outcome = super().ping(key, error=error)
        reason = dead() if callable(dead) and outcome.kind is PingKind.ALIVE else None
        return outcome if reason is None else PingOutcome(PingKind.DEAD, outcome.session_id, reason)


class CloseEndsEveryKey(SessionBook):
    def close(self, key: str, *, fail: bool | Armed[bool] = False) -> CloseOutcome:
        outcome = super().close(key, fail=fail)
        for other in self.store.keys():  # noqa: SIM118 - a SessionStore, not a dict
            self.store.reset(other)  # one key's close ends every key's session
        return outcome


class _FrozenClock:
    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at


def _expiry_never_seen(app: Starlette) -> ASGIApp:
    """The session book reads a clock that never moves: sessions never expire."""
    book = app.state.mock.book
    book.clock = _FrozenClock(book.clock.now())
    return app


class RacyStore(InMemoryStore):
    """No lock, and a pause between reading a key's session and storing the new one."""

    def transact(self, key: str, change: Change[T], ended: Ended[T] = lambda result: ()) -> T:
        current = self._active.get(key)
        time.sleep(0.02)
        new, result = change(current)
        if new is None:
            self._active.pop(key, None)
        else:
            self._active[key] = new
        self._history.extend(ended(result))
        return result


def _racy(app: Starlette) -> ASGIApp:
    """Requests are served concurrently, each in a thread of its own, over a store without a lock."""
    app.state.mock.book.store.__class__ = RacyStore

    async def concurrent(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/v1/session/"):
            await app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        sent: list[Message] = []

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def keep(message: Message) -> None:
            sent.append(message)

        await anyio.to_thread.run_sync(lambda: asyncio.run(app(scope, replay, keep)))
        for message in sent:
            await send(message)

    return concurrent


# --- behaviour: authentication ---------------------------------------------------------------------


class MissingKeyAccepted(KeyRegistry):
    def authenticate(self, header_value: str | None) -> str:
        if not header_value:
            return self.prefixes()[0]  # no header: served as the first key
        return super().authenticate(header_value)


class LowerCaseBearerAccepted(KeyRegistry):
    def authenticate(self, header_value: str | None) -> str:
        if header_value and header_value.startswith("bearer "):
            header_value = "Bearer " + header_value[len("bearer ") :]
        return super().authenticate(header_value)


# --- shapes: responses rewritten on their way out ---------------------------------------------------

Rewrite = Callable[[int, list[tuple[bytes, bytes]], bytes], tuple[list[tuple[bytes, bytes]], bytes]]


def _rewrite(path_suffix: str, change: Rewrite) -> Apply:
    """A variant that changes (headers, body) of every answer on paths ending in `path_suffix`."""

    def apply(app: Starlette) -> ASGIApp:
        async def broken(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not scope["path"].endswith(path_suffix):
                await app(scope, receive, send)
                return
            start: list[Message] = []

            async def send_changed(message: Message) -> None:
                if message["type"] == "http.response.start":
                    start.append(message)
                    return
                headers = [(k, v) for k, v in start[0]["headers"] if k.lower() != b"content-length"]
                headers, body = change(start[0]["status"], headers, message.get("body", b""))
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start[0], "headers": headers})
                await send({**message, "body": body})

            await app(scope, receive, send_changed)

        return broken

    return apply


def _json_when(status: int, change: Callable[[Any], Any]) -> Rewrite:
    def rewrite(code: int, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
        return (headers, json.dumps(change(json.loads(body))).encode()) if code == status else (headers, body)

    return rewrite


def _headers_when(
    status: int | None, change: Callable[[list[tuple[bytes, bytes]]], list[tuple[bytes, bytes]]]
) -> Rewrite:
    def rewrite(code: int, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
        return (change(headers), body) if status in (None, code) else (headers, body)

    return rewrite


def _html_500(code: int, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    if code != 500:
        return headers, body
    kept = [(k, v) for k, v in headers if k.lower() != b"content-type"]
    return [*kept, (b"content-type", b"text/html; charset=utf-8")], b"<html><body>Internal Server Error</body></html>"


def _without_header(name: bytes) -> Callable[[list[tuple[bytes, bytes]]], list[tuple[bytes, bytes]]]:
    return lambda headers: [(k, v) for k, v in headers if k.lower() != name]


def _with_content_type(value: bytes) -> Callable[[list[tuple[bytes, bytes]]], list[tuple[bytes, bytes]]]:
    return lambda headers: [*_without_header(b"content-type")(headers), (b"content-type", value)]


def _without(field: str) -> Callable[[Any], Any]:
    return lambda body: {name: value for name, value in body.items() if name != field}


def _short_ids(body: Any) -> Any:
    return {**body, "session_id": body["session_id"][:10]}


GALLERY = (
    Variant(
        "reuse-opens-new",
        "R1",
        "a second modelsession on the same model opens a new session",
        _swap("book", ReuseOpensNew),
    ),
    Variant(
        "switch-keeps-old", "R2", "modelsession on another model keeps the old session", _swap("book", SwitchKeepsOld)
    ),
    Variant(
        "bid-leaves-old-active",
        "R3",
        "bidsession leaves the old session active beside the new one",
        _swap("book", BidLeavesOldActive),
    ),
    Variant(
        "close-keeps-session",
        "R4",
        "closesession reports success but the session stays",
        _swap("book", CloseKeepsSession),
    ),
    Variant(
        "dead-ping-keeps-session", "R5", "a dead ping does not close the session", _swap("book", DeadPingKeepsSession)
    ),
    Variant("expired-still-alive", "R6", "expired sessions stay alive", _expiry_never_seen),
    Variant(
        "close-ends-every-key", "R7", "one key's close ends another key's session", _swap("book", CloseEndsEveryKey)
    ),
    Variant("racy-creates", "R8", "a race lets parallel creates open several sessions", _racy),
    Variant(
        "no-api-key-prefix",
        "body",
        "modelsession's 200 body lacks api_key_prefix",
        _rewrite("/modelsession", _json_when(200, _without("api_key_prefix"))),
    ),
    Variant(
        "short-session-id",
        "body",
        "session_id is not 0x + 64 hex",
        _rewrite("/modelsession", _json_when(200, _short_ids)),
    ),
    Variant(
        "401-without-www-authenticate",
        "auth",
        "a 401 lacks WWW-Authenticate: Bearer",
        _rewrite("session", _headers_when(401, _without_header(b"www-authenticate"))),
    ),
    Variant(
        "lower-case-bearer-accepted",
        "auth",
        "'bearer sk-...' (lower case) is accepted",
        _swap("keys", LowerCaseBearerAccepted),
    ),
    Variant("missing-key-accepted", "auth", "a request without a key is served", _swap("keys", MissingKeyAccepted)),
    Variant(
        "422-detail-string",
        "errors",
        "a validation error's detail is a string, not FastAPI's list",
        _rewrite("session", _json_when(422, lambda body: {"detail": "Unprocessable Entity"})),
    ),
    Variant("500-html", "errors", "a 500 comes back as an HTML page", _rewrite("session", _html_500)),
    Variant(
        "ping-text-plain",
        "headers",
        "pingsession answers with Content-Type text/plain",
        _rewrite("/pingsession", _headers_when(200, _with_content_type(b"text/plain"))),
    ),
    Variant(
        "no-x-process-time",
        "headers",
        "responses lack X-Process-Time",
        _rewrite("", _headers_when(None, _without_header(b"x-process-time"))),
    ),
)
VARIANTS = {variant.name: variant for variant in GALLERY}
