"""The session book: the per-key session rules R1-R8 over the gateway's two views of a key's sessions.

How v1.14.0 fails (observed-v1.14.0.md section 0): every keyed request is ONE database transaction,
rolled back when the route fails, while the chain keeps whatever the request did to it. So each
operation here decides, from the key's `KeyRecord`, the gateway row it leaves when it succeeds, the
chain it leaves in any case, and its result or error; `_run` commits the row only on success. A
background sync pass every `sync_interval` seconds of the mock's clock (run lazily: before a key's
next transaction, with the same outcome) retires rows the chain has closed and closes expired ones.
The proxy-router is the `Upstream` the book is given: it is called inside the transaction, at the
step where the gateway calls it, at most once per request.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeGuard, TypeVar, cast

from mockserver.domain.automation import AutomationSettings
from mockserver.domain.catalogue import close_error
from mockserver.domain.clock import Clock
from mockserver.domain.errors import AutomationDisabled, ChatSessionFailed, CloseFailed, CreateFailed, DomainError
from mockserver.domain.faults import FIRST_TRY, Attempt
from mockserver.domain.ids import IdSource
from mockserver.domain.provider import Opening, Upstream
from mockserver.domain.sessions import (
    CloseKind,
    CloseOutcome,
    EndReason,
    KeyRecord,
    PingKind,
    PingOutcome,
    Session,
    SessionKind,
)
from mockserver.domain.store import SessionStore
from mockserver.domain.upstream import (
    AUTOMATION_DISABLED,
    CHAT_FAILED,
    CLOSE_FAILED,
    VERIFY_FAILED,
    automation_off,
    duration_failure,
    expiry_failure,
    unique_violation,
)

T = TypeVar("T")
Chain = tuple[Session, ...]
CHAIN_LIMIT = 64
"""At most this many sessions are kept open on chain per key (the oldest orphans are forgotten first)."""


SYNC_INTERVAL = 60.0  # the gateway's background loop: a sync pass every 60 s (src/main.py:295 at v1.14.0)
MIN_DURATION = 300  # the shortest session the simulated chain accepts, in seconds (`--min-session-duration`)
BID_OPEN_SECONDS = 0.05  # how long the simulated chain takes to open a bid session (`--chain-latency`)


@dataclass(frozen=True)
class _Step(Generic[T]):
    """What one request decided: its result (or error), the row it commits on success, the chain it leaves."""

    result: T | DomainError
    active: Session | None
    chain: Chain
    ended: tuple[Session, ...] = ()


@dataclass(frozen=True)
class PendingBid:
    """A bidsession between asking the chain for a session and inserting its row (`finish_bid`)."""

    key: str
    bid_id: str
    duration: int
    seen: str | None  # the key's active row when the request deactivated it (None: there was none)


class _Asked:
    """The upstream as one request calls it: each step at most once, its first answer kept.

    A store for several processes may run a transaction's change more than once (an optimistic
    retry); the retry gets the answers of the first run, so an armed fault is neither drawn twice
    nor drawn for nothing. Steps are called lazily: only when the operation reaches them.
    """

    def __init__(self, upstream: Upstream, key: str, attempt: Attempt) -> None:
        self._upstream = upstream
        self._key = key
        self._attempt = attempt
        self._answers: dict[str, Any] = {}

    async def open(self, opening: Opening) -> DomainError | None:
        return await self._once("open", lambda: self._upstream.open_session(self._key, opening, self._attempt))

    async def verify(self, session_id: str) -> bool:
        return await self._once("verify", lambda: self._upstream.verify_session(self._key, session_id, self._attempt))

    async def close(self, session_id: str) -> bool:
        return await self._once("close", lambda: self._upstream.close_session(self._key, session_id, self._attempt))

    async def ping(self, session_id: str) -> str | None:
        return await self._once("ping", lambda: self._upstream.ping_session(self._key, session_id, self._attempt))

    async def ping_error(self) -> str | None:
        return await self._once("ping_error", lambda: self._upstream.ping_error(self._key, self._attempt))

    async def _once(self, step: str, call: Callable[[], Awaitable[T]]) -> T:
        if step not in self._answers:
            self._answers[step] = await call()
        return cast(T, self._answers[step])


class SessionBook:
    """One active session per key, with the gateway's reuse, switch, close, ping and expiry rules.

    Every operation is ONE `store.transact` on its key (R8; a bidsession is two, with the chain's
    answer in between) and touches no other key (R7). Expiry is lazy (R6): an expired row counts as
    none on the next operation for its key, until a sync pass retires it. The book calls `upstream`
    (the proxy-router) at the step where the gateway does, with the client's `attempt`, and tells a
    chat what the chain says of the session it names (`chain_error`).
    """

    def __init__(
        self,
        store: SessionStore,
        clock: Clock,
        ids: IdSource,
        upstream: Upstream,
        *,
        min_duration: int = MIN_DURATION,
        sync_interval: float = SYNC_INTERVAL,
        bid_open_seconds: float = BID_OPEN_SECONDS,
        automation: AutomationSettings | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.upstream = upstream
        self.min_duration = min_duration
        self.sync_interval = sync_interval  # 0: no background sync
        self.bid_open_seconds = bid_open_seconds  # how long the chain takes to open a bid session
        self.automation = AutomationSettings(system=True) if automation is None else automation  # for duration 0

    async def create_model_session(
        self,
        key: str,
        requested: str,
        resolved: str,
        duration: int,
        *,
        attempt: Attempt = FIRST_TRY,
    ) -> Session:
        """R1: reuse the session on the same model; R2: else close the old one and open a new one.

        The upstream is called as the gateway does: the old session's close (a switch), the open,
        then the verification of the new or reused session. A `duration` of 0 is falsy at the gateway: a new
        session then takes the key's automation setting (its duration; when automation is off for the key or
        system-wide, the gateway's 500, after the old session's close).

        Raises:
            CreateFailed: the upstream refused the open, a duration the chain or the gateway rejects,
                automation off for a duration of 0, or a failed verification (the upstream's, or the
                session is closed on chain). The gateway row is rolled back; what the request did on
                chain stays done.
        """
        asked = _Asked(self.upstream, key, attempt)
        opening = Opening(SessionKind.MODEL, requested, duration)
        automation = self.automation.effective(key)
        lasting = duration or automation.duration

        async def decide(record: KeyRecord, now: float) -> _Step[Session]:
            current, chain = record.active, record.chain
            if _reusable(current, now, resolved):
                return await _verified(current, current, chain, asked, ())
            if current is not None and not current.is_expired(now) and await asked.close(current.session_id):
                chain = _closed(chain, current)  # a failed close is ignored: the old session stays open on chain
            if not duration and not automation.enabled:
                return _Step(automation_off(), current, chain)
            opened = await self._open(key, opening, resolved, now, asked, chain, lasting)
            if isinstance(opened, _Step):
                return opened
            new, chain = opened
            return await _verified(new, current, chain, asked, _end(current, now, EndReason.SWITCHED))

        return await self._run(key, decide)

    async def session_for_chat(
        self,
        key: str,
        resolved: str,
        requested: str,
        *,
        automation: bool,
        duration: int,
        attempt: Attempt = FIRST_TRY,
    ) -> Session:
        """C1 reuse, C2 replace, C3 open only when automation allows it; never verified, never extended.

        The old session's close is not asked of the upstream: the gateway ignores a failed close
        here, and the mock's chain counts it closed (close faults break the session routes' closes).

        Raises:
            AutomationDisabled: a new session was needed and `automation` is off; an unexpired session
                on another model was closed on chain first and stays the key's row (the rollback).
            ChatSessionFailed: the chain refused the new session (the upstream's open, a short duration).
        """
        asked = _Asked(self.upstream, key, attempt)
        opening = Opening(SessionKind.MODEL, requested, duration)

        async def decide(record: KeyRecord, now: float) -> _Step[Session]:
            current, chain = record.active, record.chain
            if _reusable(current, now, resolved):
                return _Step(current, current, chain)
            if current is not None and not current.is_expired(now):
                chain = _closed(chain, current)  # a failed close is ignored by the gateway
            if not automation:
                return _Step(AutomationDisabled(AUTOMATION_DISABLED), current, chain)
            opened = await self._open(key, opening, resolved, now, asked, chain, duration)
            if isinstance(opened, _Step):
                return replace(opened, result=_chat_failure(opened.result))
            new, chain = opened
            return _Step(new, new, chain, _end(current, now, EndReason.SWITCHED))

        return await self._run(key, decide)

    async def create_bid_session(
        self, key: str, bid_id: str, duration: int, *, attempt: Attempt = FIRST_TRY
    ) -> Session:
        """`begin_bid` then `finish_bid` with no time in between (for callers that cannot wait)."""
        return await self.finish_bid(await self.begin_bid(key, bid_id, duration, attempt=attempt))

    async def begin_bid(self, key: str, bid_id: str, duration: int, *, attempt: Attempt = FIRST_TRY) -> PendingBid:
        """R3, first half: deactivate the old row (in this request's transaction) and ask the chain.

        The caller waits `bid_open_seconds` (the chain's answer), then calls `finish_bid`; bidsession
        takes no lock, so requests of one key interleave here as the gateway's did.

        Raises:
            CreateFailed: the upstream refused the open, or a duration the chain rejects; nothing changed.
        """
        asked = _Asked(self.upstream, key, attempt)
        opening = Opening(SessionKind.BID, bid_id, duration)

        async def decide(record: KeyRecord, now: float) -> _Step[PendingBid]:
            refusal = await asked.open(opening)
            # no automation branch on this route: a 0 reaches the chain as 0, which refuses it (SessionTooShort)
            failure = _failure(SessionKind.BID, refusal, duration, self.min_duration)
            seen = None if record.active is None else record.active.session_id
            result: PendingBid | DomainError = failure or PendingBid(key, bid_id, duration, seen)
            return _Step(result, record.active, record.chain)

        return await self._run(key, decide)

    async def finish_bid(self, pending: PendingBid) -> Session:
        """R3, second half: the chain has opened the session; insert its row, the old one deactivated.

        Raises:
            CreateFailed: the gateway's date overflow, or the unique active-row constraint when another
                request of the key committed a row meanwhile; the new session stays open on chain.
        """

        async def decide(record: KeyRecord, now: float) -> _Step[Session]:
            duration = pending.duration
            session_id = await self.ids.session_id()
            new = Session(session_id, pending.key, SessionKind.BID, pending.bid_id, pending.bid_id, now, now + duration)
            chain = _opened(record.chain, new)
            failure = expiry_failure(now, duration)
            current = record.active
            if failure is None and current is not None and current.session_id != pending.seen:
                failure = unique_violation(pending.key, session_id, pending.bid_id, now, new.expires_at)
            if failure is not None:
                return _Step(failure, current, chain)
            return _Step(new, new, chain, _end(current, now, EndReason.DEACTIVATED))

        return await self._run(pending.key, decide)

    async def close(self, key: str, *, attempt: Attempt = FIRST_TRY) -> CloseOutcome:
        """R4: none, expired (marked inactive, no upstream call) or closed.

        Raises:
            CloseFailed: the route's own unexpected error (the upstream's `close_error`, asked first: nothing
                changes), or the upstream's close of an active unexpired session failed; it stays active.
        """
        unexpected = await self.upstream.close_error(key, attempt)
        if unexpected is not None:
            raise close_error(unexpected)
        asked = _Asked(self.upstream, key, attempt)

        async def decide(record: KeyRecord, now: float) -> _Step[CloseOutcome]:
            current, chain = record.active, record.chain
            if current is None:
                return _Step(CloseOutcome(CloseKind.NONE, None), None, chain)
            if current.is_expired(now):
                return _retired(CloseOutcome(CloseKind.EXPIRED, current.session_id), current, chain, now)
            if not await asked.close(current.session_id):
                return _Step(CloseFailed(CLOSE_FAILED), current, chain)
            # A session the chain has already closed counts as closed (SessionAlreadyClosed is a success).
            outcome = CloseOutcome(CloseKind.CLOSED, current.session_id)
            return _retired(outcome, current, _closed(chain, current), now, EndReason.CLOSED)

        return await self._run(key, decide)

    async def ping(self, key: str, *, attempt: Attempt = FIRST_TRY) -> PingOutcome:
        """R5: the ping outcome; the upstream's `ping_error` (state unchanged) beats everything.

        The test chat fails when the chain has closed the session or the upstream's test chat fails;
        the ping then closes it, unless that close fails: the row stays active.
        """
        asked = _Asked(self.upstream, key, attempt)

        async def decide(record: KeyRecord, now: float) -> _Step[PingOutcome]:
            current, chain = record.active, record.chain
            error = await asked.ping_error()
            if error is not None:
                return _Step(PingOutcome(PingKind.ERROR, None, error), current, chain)
            if current is None:
                return _Step(PingOutcome(PingKind.NO_SESSION, None), None, chain)
            if current.is_expired(now):
                return _retired(PingOutcome(PingKind.EXPIRED, current.session_id), current, chain, now)
            failed = (
                CHAT_FAILED if not record.open_on_chain(current.session_id) else await asked.ping(current.session_id)
            )
            if failed is None:
                return _Step(PingOutcome(PingKind.ALIVE, current.session_id), current, chain)
            outcome = PingOutcome(PingKind.DEAD, current.session_id, failed)
            if not await asked.close(current.session_id):
                return _Step(outcome, current, chain)
            return _retired(outcome, current, _closed(chain, current), now, EndReason.DEAD)

        return await self._run(key, decide)

    async def sync(self, key: str | None = None) -> int:
        """Run one background pass now over one key or every key; return how many rows it retired."""
        keys = await self.store.keys() if key is None else (key,)
        now = self.clock.now()
        return sum([len((await self._apply(k, _unchanged, pass_at=now))[1]) for k in keys])

    async def record(self, key: str) -> KeyRecord:
        """The key's record after the sync passes due by now (an admin view: reading it runs them)."""
        await self._run(key, _unchanged)
        return await self.store.record(key)

    async def active(self, key: str) -> Session | None:
        """The active row after the sync passes due, expired or not (an admin view)."""
        return (await self.record(key)).active

    async def chain_error(self, key: str, session_id: str) -> str | None:
        """What the chain says of the session a chat names (the proxy-router's answer, C5): None while any
        key has it open on chain, "session expired" for one it knew (an active row or an ended session),
        else "session not found". The key's own record is read first: its open session costs one read."""
        own = await self.store.record(key)
        if own.open_on_chain(session_id):
            return None
        others = [await self.store.record(k) for k in await self.prefixes() if k != key]
        if any(record.open_on_chain(session_id) for record in others):
            return None
        known = any(r.active is not None and r.active.session_id == session_id for r in (own, *others))
        known = known or any(s.session_id == session_id for s in await self.store.history(None, None))
        return "session expired" if known else "session not found"

    async def prefixes(self) -> tuple[str, ...]:
        """The keys (by prefix) that have an active row or a session open on chain."""
        return await self.store.keys()

    async def reset(self, key: str | None = None) -> None:
        await self.store.reset(key)

    async def history(self, key: str | None = None, limit: int | None = None) -> tuple[Session, ...]:
        """Ended sessions, newest first."""
        return await self.store.history(key, limit)

    async def _open(
        self, key: str, opening: Opening, model: str, now: float, asked: _Asked, chain: Chain, duration: int
    ) -> tuple[Session, Chain] | _Step[Session]:
        """The upstream opens a new model session on `model` for `duration` seconds, or why not (a failed
        `_Step` that keeps `chain`)."""
        failure = _failure(opening.kind, await asked.open(opening), duration, self.min_duration)
        if failure is not None:
            return _Step(failure, None, chain)
        new = Session(await self.ids.session_id(), key, opening.kind, model, opening.requested, now, now + duration)
        chain = _opened(chain, new)
        overflow = expiry_failure(now, duration)  # after the chain opened it: an orphan on chain
        return (new, chain) if overflow is None else _Step(overflow, None, chain)

    async def _run(self, key: str, decide: Callable[[KeyRecord, float], Coroutine[Any, Any, _Step[T]]]) -> T:
        result: T | DomainError = (await self._apply(key, decide))[0]
        if isinstance(result, DomainError):
            raise result
        return result

    async def _apply(
        self,
        key: str,
        decide: Callable[[KeyRecord, float], Coroutine[Any, Any, _Step[T]]],
        *,
        pass_at: float | None = None,
    ) -> tuple[T | DomainError, tuple[Session, ...]]:
        """One transaction: the sync pass due (or one at `pass_at`), then `decide`; return its result and
        the rows that ended (recorded in the history in the same atomic step)."""

        async def change(before: KeyRecord) -> tuple[KeyRecord, tuple[T | DomainError, tuple[Session, ...]]]:
            now = self.clock.now()
            due = self._due(before, now) if pass_at is None else pass_at
            record = before if due is None else self._pass(before, due)
            step = await decide(record, now)
            failed = isinstance(step.result, DomainError)
            active = record.active if failed else step.active
            chain = _bounded(tuple(s for s in step.chain if not _gone(s, active, now)), active)
            ended = _retirements(before, record) + (() if failed else step.ended)
            return replace(record, active=active, chain=chain), (step.result, ended)

        return await self.store.transact(key, change, _ended_by)

    def _due(self, record: KeyRecord, now: float) -> float | None:
        """The time of the latest sync pass due since the record's last one (None: none is due)."""
        if not self.sync_interval:
            return None
        latest = math.floor(now / self.sync_interval) * self.sync_interval
        return latest if latest > record.synced_at else None

    @staticmethod
    def _pass(record: KeyRecord, at: float) -> KeyRecord:
        """One sync pass at `at`: a row the chain closed goes inactive; an expired row is closed on chain."""
        current = record.active
        synced = replace(record, synced_at=at)
        if current is not None and not record.open_on_chain(current.session_id):
            return replace(synced, active=None)
        if current is not None and current.is_expired(at):
            return replace(synced, active=None, chain=_closed(record.chain, current))
        return synced


def _chat_failure(error: object) -> DomainError:
    """The create error as chat reports it: "Failed to create session: ..." without modelsession's prefix."""
    text = str(error)
    for prefix in ("Error from proxy router: ", "Unexpected error: "):
        text = text.removeprefix(prefix)
    return ChatSessionFailed(text)


def _failure(kind: SessionKind, refusal: DomainError | None, duration: int, minimum: int) -> DomainError | None:
    """Why the session is not opened: the upstream's refusal first, then the duration."""
    return refusal if refusal is not None else duration_failure(kind, duration, minimum=minimum)


async def _verified(
    session: Session, current: Session | None, chain: Chain, asked: _Asked, ended: tuple[Session, ...]
) -> _Step[Session]:
    """Step 6 of modelsession: the session must be open on chain and valid upstream; else it is closed and
    the request fails."""
    if session.session_id in {s.session_id for s in chain} and await asked.verify(session.session_id):
        return _Step(session, session, chain, ended)
    return _Step(CreateFailed(VERIFY_FAILED), current, _closed(chain, session))


async def _unchanged(record: KeyRecord, now: float) -> _Step[None]:
    return _Step(None, record.active, record.chain)


def _gone(session: Session, active: Session | None, now: float) -> bool:
    """A session that ended on chain by time and is not the gateway's row (which the sync closes)."""
    return session.is_expired(now) and (active is None or session.session_id != active.session_id)


def _bounded(chain: Chain, active: Session | None) -> Chain:
    """At most `CHAIN_LIMIT` sessions: the oldest orphans go first, the gateway's row stays."""
    if len(chain) <= CHAIN_LIMIT:
        return chain
    row = () if active is None else tuple(s for s in chain if s.session_id == active.session_id)
    return (*row, *tuple(s for s in chain if s not in row)[len(row) - CHAIN_LIMIT :])


def _retirements(before: KeyRecord, after: KeyRecord) -> tuple[Session, ...]:
    """The row a sync pass retired, as it ended (closed on chain, or expired)."""
    row = before.active
    if row is None or after.active is not None:
        return ()
    reason = EndReason.CHAIN_CLOSED if not before.open_on_chain(row.session_id) else EndReason.EXPIRED
    return (replace(row, closed_at=after.synced_at, close_reason=reason),)


def _ended_by(outcome: tuple[object, tuple[Session, ...]]) -> tuple[Session, ...]:
    return outcome[1]


def _reusable(current: Session | None, now: float, resolved: str) -> TypeGuard[Session]:
    """R1: an active, unexpired model session on the same resolved model."""
    return (
        current is not None
        and not current.is_expired(now)
        and current.kind is SessionKind.MODEL
        and current.model == resolved
    )


def _opened(chain: Chain, session: Session) -> Chain:
    return (*chain, session)


def _closed(chain: Chain, session: Session) -> Chain:
    return tuple(s for s in chain if s.session_id != session.session_id)


def _end(current: Session | None, now: float, reason: EndReason) -> tuple[Session, ...]:
    """The old session as it ends before a new one opens (R6: an expired one ends as expired)."""
    return () if current is None else (current.ended(now, reason),)


def _retired(result: T, session: Session, chain: Chain, now: float, reason: EndReason = EndReason.EXPIRED) -> _Step[T]:
    """The row goes inactive (committed with the request)."""
    return _Step(result, None, chain, (session.ended(now, reason),))
