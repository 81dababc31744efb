"""Broken gateways: each is the real mock with one small, named override.

A variant takes the real mock app and returns the broken one. Behaviour bugs swap one domain object's
class for a subclass that overrides one method (or replace its clock or store); shape bugs rewrite one
kind of response on its way out.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeGuard

import anyio.to_thread
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.api import CHAT, CLOSE, EMBEDDINGS, PING
from contracts.chat import AUTOMATION_OFF
from mockserver.domain import (
    FIRST_TRY,
    Attempt,
    CloseKind,
    CloseOutcome,
    CreateFailed,
    InMemoryStore,
    KeyRecord,
    KeyRegistry,
    PingKind,
    PingOutcome,
    Session,
    SessionBook,
    SessionKind,
)
from mockserver.domain.book import PendingBid
from mockserver.domain.store import EMPTY, Change, Ended, T

Apply = Callable[[Starlette], ASGIApp]


@dataclass(frozen=True)
class Variant:
    name: str
    rule: str  # the rule (R1-R8) or contract part it breaks (for a faithful variant: the rule it keeps)
    breaks: str  # what a real gateway would get wrong (for a faithful variant: what it does differently)
    apply: Apply
    faithful: bool = False  # a gateway that keeps the contract in its own way: the suite must PASS it
    keys_needed: int = 1  # fewer keys than this cannot see the bug (R7 needs a second key)
    chat: bool = False  # only chat shows the bug: the suite must be run with --allow-chat
    race: bool = False  # only requests that meet within a time window show the bug: a run may miss it
    bids: bool = False  # only bid sessions show the bug: the suite must be given a bid id (--bid-id)
    missed_at: tuple[str, ...] = ()  # configurations at which the suite is known to miss it still (a gap, not a pass)


async def _active(book: SessionBook, key: str) -> Session | None:
    """The key's active session, read from the book's store."""
    return (await book.store.record(key)).active


async def _rewrite_record(book: SessionBook, key: str, change: Callable[[KeyRecord], KeyRecord]) -> None:
    """Store `change(record)` as the key's record, in one transaction of the book's store."""

    async def changed(record: KeyRecord) -> tuple[KeyRecord, None]:
        return change(record), None

    await book.store.transact(key, changed)


def _swap(attribute: str, cls: type) -> Apply:
    def apply(app: Starlette) -> ASGIApp:
        getattr(app.state.mock, attribute).__class__ = cls
        return app

    return apply


# --- behaviour: the session rules ------------------------------------------------------------------


class ReuseOpensNew(SessionBook):
    async def create_model_session(
        self, key: str, requested: str, resolved: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        await self.store.reset(key)  # forgets the key's session, so a same-model create opens another one
        return await super().create_model_session(key, requested, resolved, duration, attempt=attempt)


class SwitchKeepsOld(SessionBook):
    async def create_model_session(
        self, key: str, requested: str, resolved: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        current = await _active(self, key)
        if current is not None and not current.is_expired(self.clock.now()):
            return current  # any model reuses the current session
        return await super().create_model_session(key, requested, resolved, duration, attempt=attempt)


class BidLeavesOldActive(SessionBook):
    async def finish_bid(self, pending: PendingBid) -> Session:
        old = await _active(self, pending.key)
        opened = await super().finish_bid(pending)
        if old is not None:  # the old one is still the key's session
            await _rewrite_record(self, pending.key, lambda current: replace(current, active=old))
        return opened


class CloseKeepsSession(SessionBook):
    async def close(self, key: str, *, attempt: Attempt = FIRST_TRY) -> CloseOutcome:
        current = await _active(self, key)
        if current is None:
            return await super().close(key, attempt=attempt)
        return CloseOutcome(CloseKind.CLOSED, current.session_id)  # reports success, keeps the session


class DeadPingKeepsSession(SessionBook):
    async def ping(self, key: str, *, attempt: Attempt = FIRST_TRY) -> PingOutcome:
        before = await self.store.record(key)
        outcome = await super().ping(key, attempt=attempt)
        row = before.active
        if outcome.kind is PingKind.DEAD and row is not None and before.open_on_chain(row.session_id):
            # the test chat failed on a live session: reported dead, but neither the row nor the chain closed
            await _rewrite_record(self, key, lambda current: replace(current, active=row, chain=before.chain))
        return outcome


class CloseEndsEveryKey(SessionBook):
    async def close(self, key: str, *, attempt: Attempt = FIRST_TRY) -> CloseOutcome:
        outcome = await super().close(key, attempt=attempt)
        for other in await self.store.keys():
            await self.store.reset(other)  # one key's close ends every key's session
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

    window = 0.02  # seconds between the read and the write

    async def transact(self, key: str, change: Change[T], ended: Ended[T] = lambda result: ()) -> T:
        current = self._records.get(key, EMPTY)
        await asyncio.sleep(self.window)
        new, result = await change(current)
        if new.empty:
            self._records.pop(key, None)
        else:
            self._records[key] = new
        self._history.extend(ended(result))
        return result


class BrieflyRacyStore(RacyStore):
    """The same race with a window of a few milliseconds: only creates sent at the same moment see it."""

    window = 0.003


def _racy(store: type[RacyStore]) -> Apply:
    return lambda app: _concurrent(app, store)


def _concurrent(app: Starlette, store: type[RacyStore]) -> ASGIApp:
    """Requests are served concurrently, each in a thread of its own, over a store without a lock."""
    app.state.mock.book.store.__class__ = store

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


# The first line is v1.14.0's exact text (observed-v1.14.0.md section 2); the rest varies with ids and times.
UNIQUE_VIOLATION = (
    "Unexpected error: (sqlalchemy.dialects.postgresql.asyncpg.IntegrityError) <class "
    "'asyncpg.exceptions.UniqueViolationError'>: duplicate key value violates unique constraint "
    '"sessions_active_api_key_unique"\nDETAIL:  Key (api_key_id, is_active)=(1, t) already exists.\n'
    "[SQL: INSERT INTO sessions (id, user_id, api_key_id, model, type, created_at, expires_at, is_active) "
    "VALUES ($1::VARCHAR, …)]\n(Background on this error at: https://sqlalche.me/e/20/gkpj)"
)
UPSTREAM_OPEN = 0.1  # seconds v1.14.0's bidsession spends opening the session upstream before its insert


def _bids_like_v1_14_0(app: Starlette) -> ASGIApp:
    """Parallel bidsessions of one key as v1.14.0 answers them: one 200, the others the unique-index 500.

    v1.14.0's bidsession takes no lock: each request opens a session upstream, then inserts its row,
    and the partial unique index lets the first insert win and fails the others once it commits.
    Here a bidsession holds its key for `UPSTREAM_OPEN`; one that arrives meanwhile waits for it and,
    when it succeeded, fails as the gateway does (state untouched). Sequential bidsessions are unchanged.
    """
    in_flight: dict[bytes, tuple[asyncio.Event, list[int]]] = {}

    async def gateway(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/bidsession"):
            await app(scope, receive, send)
            return
        key = dict(scope["headers"]).get(b"authorization", b"")
        if key in in_flight:
            done, statuses = in_flight[key]
            await done.wait()
            if statuses == [200]:
                await JSONResponse({"detail": UNIQUE_VIOLATION}, 500, {"X-Process-Time": "0.1"})(scope, receive, send)
                return
        await _hold(key, scope, receive, send)

    async def _hold(key: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        done, statuses = in_flight[key] = asyncio.Event(), []

        async def seen(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            await send(message)

        try:
            await asyncio.sleep(UPSTREAM_OPEN)
            await app(scope, receive, seen)
        finally:
            del in_flight[key]
            done.set()

    return gateway


# --- behaviour: sequences (state that outlives its session, is shared across keys, or counts wrong) ---


def _memory(book: SessionBook, name: str) -> dict[Any, Any]:
    """What a broken gateway keeps beside its session rows (a cache, a counter), in the book's own dict: a
    variant swaps the book's class, so the state is created on first use."""
    kept: dict[Any, Any] = book.__dict__.setdefault(f"gallery_{name}", {})
    return kept


def _unexpired(session: Session | None, now: float) -> TypeGuard[Session]:
    return session is not None and not session.is_expired(now)


async def _make_active(book: SessionBook, key: str, session: Session) -> None:
    """The key's row becomes `session`, open on chain as far as the gateway's pings can tell."""
    await _rewrite_record(
        book,
        key,
        lambda record: replace(
            record,
            active=session,
            chain=(*(s for s in record.chain if s.session_id != session.session_id), session),
        ),
    )


class _ModelCache(SessionBook):
    """Reuse looks in a cache of the sessions each key opened, by model, that nothing ever invalidates."""

    def revives(self, current: Session | None, now: float) -> bool:
        raise NotImplementedError

    async def create_model_session(
        self, key: str, requested: str, resolved: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        cache, now = _memory(self, "cache"), self.clock.now()
        cached = cache.get((key, resolved))
        if _unexpired(cached, now) and self.revives(await _active(self, key), now):
            await _make_active(self, key, cached)
            return cached
        session = await super().create_model_session(key, requested, resolved, duration, attempt=attempt)
        cache[(key, resolved)] = session
        return session


class CloseLeavesTheCache(_ModelCache):
    def revives(self, current: Session | None, now: float) -> bool:
        return current is None  # the key's session was closed: the cache still has it


class SwitchLeavesTheCache(_ModelCache):
    def revives(self, current: Session | None, now: float) -> bool:
        return _unexpired(current, now)  # a switch closed this model's session: the cache still has it


class ModelAfterBidFails(SessionBook):
    async def create_model_session(
        self, key: str, requested: str, resolved: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        current = await _active(self, key)
        if _unexpired(current, self.clock.now()) and current.kind is SessionKind.BID:
            # the switch looks the old session's model up in the model table to close it: a bid id is not there
            raise CreateFailed(f"Unexpected error: model {current.model} not found")
        return await super().create_model_session(key, requested, resolved, duration, attempt=attempt)


class ReuseNeedsSameDuration(SessionBook):
    async def create_model_session(
        self, key: str, requested: str, resolved: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        current, wanted = await _active(self, key), duration or self.automation.effective(key).duration
        if (
            _unexpired(current, self.clock.now())
            and current.model == resolved
            and round(current.expires_at - current.created_at) != wanted
        ):
            # the lookup matches the model AND the duration: it misses, so the row is replaced by a new session
            await _rewrite_record(self, key, lambda record: replace(record, active=None))
        return await super().create_model_session(key, requested, resolved, duration, attempt=attempt)


class QuotaKeepsCurrent(SessionBook):
    """A key that has opened `QUOTA` sessions is over its quota: it gets the session it holds, on any model."""

    quota = 3

    async def create_model_session(
        self, key: str, requested: str, resolved: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        opened, current = _memory(self, "opened"), await _active(self, key)
        if opened.get(key, 0) >= self.quota and _unexpired(current, self.clock.now()):
            return current
        session = await super().create_model_session(key, requested, resolved, duration, attempt=attempt)
        if current is None or session.session_id != current.session_id:
            opened[key] = opened.get(key, 0) + 1
        return session


class ReuseRotates(SessionBook):
    """A reuse counter meant for the logs is read as a limit: the `LIMIT`-th reuse of a session opens a new one."""

    limit = 3

    async def create_model_session(
        self, key: str, requested: str, resolved: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        reuses, current = _memory(self, "reuses"), await _active(self, key)
        session = await super().create_model_session(key, requested, resolved, duration, attempt=attempt)
        if current is None or session.session_id != current.session_id:
            return session
        reuses[session.session_id] = reuses.get(session.session_id, 0) + 1
        if reuses[session.session_id] < self.limit:
            return session
        await _rewrite_record(self, key, lambda record: replace(record, active=None))
        return await super().create_model_session(key, requested, resolved, duration, attempt=attempt)


class FailedSwitchKeepsNewModel(SessionBook):
    async def create_model_session(
        self, key: str, requested: str, resolved: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        current = await _active(self, key)
        try:
            return await super().create_model_session(key, requested, resolved, duration, attempt=attempt)
        except CreateFailed:
            if _unexpired(current, self.clock.now()) and current.model != resolved:
                # the row's model was written before the open, and the rollback left that write in
                changed = replace(current, model=resolved, requested=requested)
                await _rewrite_record(self, key, lambda record: replace(record, active=changed))
            raise


class KeysShareModelSessions(SessionBook):
    async def create_model_session(
        self, key: str, requested: str, resolved: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        now = self.clock.now()
        if not _reusable_here(await _active(self, key), resolved, now):
            # the reuse query forgot its `api_key_id`: any key's session on the model will do
            for other in await self.store.keys():
                theirs = await _active(self, other)
                if other != key and _reusable_here(theirs, resolved, now):
                    await _make_active(self, key, theirs)
                    return theirs
        return await super().create_model_session(key, requested, resolved, duration, attempt=attempt)


class CloseFallsBackToAnyKey(SessionBook):
    async def close(self, key: str, *, attempt: Attempt = FIRST_TRY) -> CloseOutcome:
        now = self.clock.now()
        if not _unexpired(await _active(self, key), now):
            # the lookup of the session to close lost its `api_key_id` filter when the key has none of its own:
            # the newest active session of any key is closed
            for other in await self.store.keys():
                if other != key and _unexpired(await _active(self, other), now):
                    return await super().close(other, attempt=attempt)
        return await super().close(key, attempt=attempt)


def _reusable_here(session: Session | None, resolved: str, now: float) -> TypeGuard[Session]:
    return _unexpired(session, now) and session.kind is SessionKind.MODEL and session.model == resolved


class IdsCountOpenSessions(SessionBook):
    """Session ids are the hash of the key and its count of open sessions, which a close brings back down."""

    async def create_model_session(
        self, key: str, requested: str, resolved: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        counts, before = _memory(self, "open"), await _active(self, key)
        session = await super().create_model_session(key, requested, resolved, duration, attempt=attempt)
        if before is not None and session.session_id == before.session_id:
            return session
        number = counts.get(key, 0)
        counts[key] = number + 1
        numbered = replace(session, session_id="0x" + hashlib.sha256(f"{key}:{number}".encode()).hexdigest())
        await _rewrite_record(
            self,
            key,
            lambda record: replace(
                record, active=numbered, chain=(*(s for s in record.chain if s != session), numbered)
            ),
        )
        return numbered

    async def close(self, key: str, *, attempt: Attempt = FIRST_TRY) -> CloseOutcome:
        outcome = await super().close(key, attempt=attempt)
        if outcome.kind is CloseKind.CLOSED:
            counts = _memory(self, "open")
            counts[key] = max(counts.get(key, 0) - 1, 0)
        return outcome


class BidReusedLikeAModel(SessionBook):
    async def finish_bid(self, pending: PendingBid) -> Session:
        current = await _active(self, pending.key)
        if (
            _unexpired(current, self.clock.now())
            and current.kind is SessionKind.BID
            and current.model == pending.bid_id
        ):
            return current  # the model route's reuse, applied to bids: the `model` column holds the bid id
        return await super().finish_bid(pending)


# --- behaviour: authentication ---------------------------------------------------------------------


class MissingKeyAccepted(KeyRegistry):
    async def authenticate(self, header_value: str | None, *, active_only: bool = False) -> str:
        if not header_value:
            return (await self.prefixes())[0]  # no header: served as the first key
        return await super().authenticate(header_value, active_only=active_only)


class LowerCaseBearerAccepted(KeyRegistry):
    async def authenticate(self, header_value: str | None, *, active_only: bool = False) -> str:
        if header_value and header_value.startswith("bearer "):
            header_value = "Bearer " + header_value[len("bearer ") :]
        return await super().authenticate(header_value, active_only=active_only)


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


def _alive_unsuccessful(body: Any) -> Any:
    return {**body, "success": False} if body.get("status") == "alive" else body


def _model_echoes_resolved(app: Starlette) -> ASGIApp:
    """modelsession's `model` is the blockchain id the model resolved to, not the `model_id` sent."""
    models = app.state.mock.models
    echo = _json_when(200, lambda body: {**body, "model": models.resolve(body["model"])})
    return _rewrite("/modelsession", echo)(app)


# --- chat: chat completions and embeddings around the key's session (C1-C6, streams) -------------------


def _is_chat(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["path"] in (CHAT.path, EMBEDDINGS.path)


async def _read_body(receive: Receive) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    return body


async def _never() -> Message:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")  # pragma: no cover


def _replay(body: bytes, then: Receive = _never) -> Receive:
    """The body once, then `then`'s messages: the client's own (a streamed answer waits on them for a
    disconnect) or, for a request of the variant's own, none."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _inner(app: ASGIApp, scope: Scope, path: str) -> Any:
    """POST `path` to the app with the request's headers (its key), no body; the answer's JSON."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
    inner = {**scope, "path": path, "raw_path": path.encode(), "query_string": b"", "headers": headers}
    sent: list[Message] = []

    async def keep(message: Message) -> None:
        sent.append(message)

    await app(inner, _replay(b""), keep)
    return json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


ChatChange = Callable[[ASGIApp, Scope, dict[str, Any]], Awaitable[dict[str, Any] | None]]


def _around_chat(before: ChatChange | None = None, after: str | None = None) -> Apply:
    """A variant that changes each chat/embeddings request's JSON body first (`before`; None answers 403
    automation-off instead), or POSTs `after` (a session path) once the answer has gone out."""

    def apply(app: Starlette) -> ASGIApp:
        async def broken(scope: Scope, receive: Receive, send: Send) -> None:
            if not _is_chat(scope):
                await app(scope, receive, send)
                return
            body = await _read_body(receive)
            data = json.loads(body) if body else None
            if before is not None and isinstance(data, dict):
                changed = await before(app, scope, data)
                if changed is None:
                    await JSONResponse({"detail": AUTOMATION_OFF}, 403, {"X-Process-Time": "0.01"})(
                        scope, receive, send
                    )
                    return
                body = json.dumps(changed).encode()
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await app({**scope, "headers": headers}, _replay(body, receive), send)
            if after is not None:
                await _inner(app, scope, after)

        return broken

    return apply


async def _close_first(app: ASGIApp, scope: Scope, body: dict[str, Any]) -> dict[str, Any]:
    """The key's session is closed before each chat: chat never reuses it."""
    if not body.get("session_id"):
        await _inner(app, scope, CLOSE.path)
    return body


def _dropping(name: str) -> ChatChange:
    """The body reaches the gateway without `name`."""

    async def drop(app: ASGIApp, scope: Scope, body: dict[str, Any]) -> dict[str, Any]:
        return {field: value for field, value in body.items() if field != name}

    return drop


async def _refuse_without_session(app: ASGIApp, scope: Scope, body: dict[str, Any]) -> dict[str, Any] | None:
    """A chat that needs a new session is refused as if automation were off (it is on)."""
    if body.get("session_id") or (await _inner(app, scope, PING.path))["status"] == "alive":
        return body
    return None


async def _embeddings_on_the_chat_session(app: ASGIApp, scope: Scope, body: dict[str, Any]) -> dict[str, Any]:
    """Embeddings run on whatever session the key holds (as if given in the body): no switch to their model."""
    if scope["path"] != EMBEDDINGS.path or body.get("session_id"):
        return body
    held = await _inner(app, scope, PING.path)
    return {**body, "session_id": held["session_id"]} if held["status"] == "alive" else body


def _stream_rewrite(change: Callable[[bytes], bytes]) -> Apply:
    """A variant that rewrites every piece of a streamed chat answer on its way out."""

    def apply(app: Starlette) -> ASGIApp:
        async def broken(scope: Scope, receive: Receive, send: Send) -> None:
            if not _is_chat(scope):
                await app(scope, receive, send)
                return

            async def changed(message: Message) -> None:
                if message["type"] == "http.response.body":
                    message = {**message, "body": change(message.get("body", b""))}
                await send(message)

            await app(scope, receive, changed)

        return broken

    return apply


def _drop_done(piece: bytes) -> bytes:
    return piece.replace(b"data: [DONE]\n\n", b"")


def _flat_error_frame(piece: bytes) -> bytes:
    """`data: {"error": {"message": m, ...}}` becomes `data: {"error": m}` (the proxy-router's own shape)."""
    if not piece.startswith(b'data: {"error"'):
        return piece
    error = json.loads(piece.removeprefix(b"data: "))["error"]
    return b"data: " + json.dumps({"error": error["message"]}).encode() + b"\n\n"


GALLERY: tuple[Variant, ...] = (
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
        bids=True,
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
        "close-ends-every-key",
        "R7",
        "one key's close ends another key's session",
        _swap("book", CloseEndsEveryKey),
        keys_needed=2,
    ),
    Variant("racy-creates", "R8", "a race lets parallel creates open several sessions", _racy(RacyStore), race=True),
    Variant(
        "racy-creates-3ms",
        "R8",
        "a race window of 3 ms lets creates sent at the same moment open several sessions",
        _racy(BrieflyRacyStore),
        race=True,
    ),
    Variant(
        "bids-like-v1.14.0",
        "R8",
        "parallel bidsessions: one 200, the others v1.14.0's unique-index 500; one session stays active",
        _bids_like_v1_14_0,
        faithful=True,
    ),
    # The sequence bugs: `missed_at` records where the suite still misses one (tests/gallery/test_mutants.py
    # expects that miss; its table says when a run catches it after all).
    Variant(
        "create-after-close-revives",
        "R4",
        "a create after a close hands back the closed session (a reuse cache the close leaves): create A, close, "
        "create A",
        _swap("book", CloseLeavesTheCache),
    ),
    Variant(
        "switch-back-revives",
        "R2",
        "switching back to a model hands back its closed session (a reuse cache the switch leaves): A, B, A",
        _swap("book", SwitchLeavesTheCache),
    ),
    Variant(
        "model-after-bid-500",
        "R2",
        "a modelsession right after a bidsession answers 500 (the switch looks the bid id up as a model): bid, A",
        _swap("book", ModelAfterBidFails),
        bids=True,
    ),
    Variant(
        "reuse-needs-same-duration",
        "R1",
        "a same-model create reuses the session only when the sessionDuration matches too: A 600 s, A 3600 s",
        _swap("book", ReuseNeedsSameDuration),
    ),
    Variant(
        "quota-keeps-current",
        "R2",
        "once a key has opened 3 sessions, a create on another model returns the session it holds: A, B, A, B",
        _swap("book", QuotaKeepsCurrent),
    ),
    Variant(
        "third-reuse-opens-new",
        "R1",
        "a reuse counter read as a limit: the third reuse of a session opens a new one: A, A, A, A",
        _swap("book", ReuseRotates),
    ),
    Variant(
        "failed-switch-keeps-new-model",
        "R2",
        "a failed switch leaves the new model on the old session's row, so a create on it reuses the closed old "
        "session and fails its verification: A, B 299 s (500), B (500)",
        _swap("book", FailedSwitchKeepsNewModel),
    ),
    Variant(
        "keys-share-model-sessions",
        "R7",
        "the reuse lookup ignores the key: a key's create on a model another key holds gets that key's session",
        _swap("book", KeysShareModelSessions),
        keys_needed=2,
    ),
    Variant(
        "close-falls-back-to-any-key",
        "R7",
        "a close for a key with no session closes another key's (the lookup drops its key filter when the key "
        "has none): key 1 creates, key 2 closes",
        _swap("book", CloseFallsBackToAnyKey),
        keys_needed=2,
    ),
    Variant(
        "ids-count-open-sessions",
        "R4",
        "a session id is the hash of the key and its count of open sessions, which a close lowers: create A, "
        "close, create B gets A's id",
        _swap("book", IdsCountOpenSessions),
    ),
    Variant(
        "bid-reused-like-a-model",
        "R3",
        "a second bidsession on the same bid hands back the key's bid session instead of opening one: bid, bid",
        _swap("book", BidReusedLikeAModel),
        bids=True,
    ),
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
        "model-echoes-resolved-id",
        "body",
        "modelsession's `model` is the resolved blockchain id, not the model_id sent",
        _model_echoes_resolved,
    ),
    Variant(
        "alive-ping-unsuccessful",
        "body",
        'an alive ping says "success": false',
        _rewrite("/pingsession", _json_when(200, _alive_unsuccessful)),
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
CHAT_VARIANTS = (
    Variant(
        "chat-ignores-session", "C1", "each chat opens a new session instead of the key's", _around_chat(_close_first)
    ),
    Variant(
        "chat-ignores-model",
        "C2",
        "chat drops `model`: every chat uses the default model's session",
        _around_chat(_dropping("model")),
    ),
    Variant(
        "chat-refuses-without-session",
        "C3",
        "a chat that needs a new session answers 403 although automation is on",
        _around_chat(_refuse_without_session),
    ),
    Variant(
        "embeddings-on-chat-session",
        "C4",
        "embeddings use the chat's session instead of replacing it with their model's",
        _around_chat(_embeddings_on_the_chat_session),
    ),
    Variant(
        "body-session-id-ignored",
        "C5",
        "a body session_id is ignored: the key's session is used (and switched)",
        _around_chat(_dropping("session_id")),
    ),
    Variant("chat-closes-session", "C6", "the key's session is closed after each chat", _around_chat(after=CLOSE.path)),
    Variant(
        "stream-without-done", "stream", "a streamed chat ends without `data: [DONE]`", _stream_rewrite(_drop_done)
    ),
    Variant(
        "error-frame-flat",
        "stream",
        'a stream\'s error frame is `{"error": "text"}`, not `{"error": {message, type, status}}`',
        _stream_rewrite(_flat_error_frame),
    ),
)
GALLERY += tuple(replace(variant, chat=True) for variant in CHAT_VARIANTS)
VARIANTS = {variant.name: variant for variant in GALLERY}
