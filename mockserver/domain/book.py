"""The session book: the per-key session rules R1-R8 applied through a `SessionStore`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeGuard, TypeVar

from mockserver.domain.clock import Clock
from mockserver.domain.errors import CloseFailed, CreateFailed, DomainError
from mockserver.domain.ids import IdSource
from mockserver.domain.sessions import (
    CloseKind,
    CloseOutcome,
    EndReason,
    PingKind,
    PingOutcome,
    Session,
    SessionKind,
)
from mockserver.domain.store import SessionStore
from mockserver.domain.upstream import CLOSE_FAILED, VERIFY_FAILED, session_expiry, upstream_failure

T = TypeVar("T")


@dataclass(frozen=True)
class _Step(Generic[T]):
    """What one transaction decided: the caller's result (or the error to raise) and what it ended."""

    result: T | DomainError
    ended: tuple[Session, ...] = ()


Decision = tuple[Session | None, _Step[T]]
Armed = Callable[[], T]
"""An armed fault, drawn only when the operation reaches the step it breaks (and at most once)."""


def _once(value: T | Armed[T]) -> Armed[T]:
    """A draw that is made at most once, so a retried transaction sees the same fault."""
    if not callable(value):
        return lambda: value
    drawn: list[T] = []

    def draw() -> T:
        if not drawn:
            drawn.append(value())
        return drawn[0]

    return draw


class SessionBook:
    """One active session per key, with the gateway's reuse, switch, close, ping and expiry rules.

    Every operation is ONE `store.transact` on its key (R8) and touches no other key (R7). Expiry is
    lazy (R6): an expired session counts as none on the next operation for its key. Errors are
    raised after the transaction has committed, so what the gateway had already done stays done.
    """

    def __init__(
        self,
        store: SessionStore,
        clock: Clock,
        ids: IdSource,
        *,
        default_duration: int = 3600,
        min_duration: int = 300,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.default_duration = default_duration
        self.min_duration = min_duration

    def create_model_session(
        self,
        key: str,
        requested: str,
        resolved: str,
        duration: int,
        *,
        fail: str | None | Armed[str | DomainError | None] = None,
        verify_fail: bool | Armed[bool] = False,
    ) -> Session:
        """R1: reuse the session on the same model; R2: else end the old one and open a new one.

        Raises:
            CreateFailed: an armed `fail`, a duration the chain or the gateway rejects, or
                `verify_fail`. The old session stays ended and the key has none.
        """

        draw_fail: Armed[str | DomainError | None] = _once(fail)
        draw_verify_fail: Armed[bool] = _once(verify_fail)

        def decide(current: Session | None, now: float) -> Decision[Session]:
            if _reusable(current, now, resolved):
                # Step 6 of the gateway verifies a reused session too.
                if draw_verify_fail():
                    return None, _ended(CreateFailed(VERIFY_FAILED), current, now, EndReason.VERIFY_FAILED)
                return current, _Step(current)
            ended = _end(current, now, EndReason.SWITCHED)
            opened = self._open(key, SessionKind.MODEL, resolved, requested, duration, now, draw_fail)
            if isinstance(opened, DomainError):
                return None, _Step(opened, ended)
            if draw_verify_fail():
                return None, _Step(CreateFailed(VERIFY_FAILED), (*ended, opened.ended(now, EndReason.VERIFY_FAILED)))
            return opened, _Step(opened, ended)

        return self._run(key, decide)

    def create_bid_session(
        self, key: str, bid_id: str, duration: int, *, fail: str | None | Armed[str | DomainError | None] = None
    ) -> Session:
        """R3: deactivate the old session (no close), then open a bid session (`model` = bid id).

        Raises:
            CreateFailed: as `create_model_session`; the old session stays deactivated.
        """

        draw_fail: Armed[str | DomainError | None] = _once(fail)

        def decide(current: Session | None, now: float) -> Decision[Session]:
            ended = _end(current, now, EndReason.DEACTIVATED)
            opened = self._open(key, SessionKind.BID, bid_id, bid_id, duration, now, draw_fail)
            return (None if isinstance(opened, DomainError) else opened), _Step(opened, ended)

        return self._run(key, decide)

    def close(self, key: str, *, fail: bool | Armed[bool] = False) -> CloseOutcome:
        """R4: none, expired (marked inactive) or closed.

        Raises:
            CloseFailed: `fail` with an active unexpired session, which then stays active.
        """

        draw_fail = _once(fail)

        def decide(current: Session | None, now: float) -> Decision[CloseOutcome]:
            if current is None:
                return None, _Step(CloseOutcome(CloseKind.NONE, None))
            if current.is_expired(now):
                return None, _ended(CloseOutcome(CloseKind.EXPIRED, current.session_id), current, now)
            if draw_fail():
                return current, _Step(CloseFailed(CLOSE_FAILED))
            return None, _ended(CloseOutcome(CloseKind.CLOSED, current.session_id), current, now, EndReason.CLOSED)

        return self._run(key, decide)

    def ping(
        self, key: str, *, dead: str | None | Armed[str | None] = None, error: str | None | Armed[str | None] = None
    ) -> PingOutcome:
        """R5: the ping outcome; `error` (state unchanged) beats `dead` (closes the session).

        `dead` is drawn only when a live session is pinged.
        """
        draw_dead, draw_error = _once(dead), _once(error)

        def decide(current: Session | None, now: float) -> Decision[PingOutcome]:
            error = draw_error()
            if error is not None:
                return current, _Step(PingOutcome(PingKind.ERROR, None, error))
            if current is None:
                return None, _Step(PingOutcome(PingKind.NO_SESSION, None))
            if current.is_expired(now):
                return None, _ended(PingOutcome(PingKind.EXPIRED, current.session_id), current, now)
            dead = draw_dead()
            if dead is not None:
                return None, _ended(PingOutcome(PingKind.DEAD, current.session_id, dead), current, now, EndReason.DEAD)
            return current, _Step(PingOutcome(PingKind.ALIVE, current.session_id))

        return self._run(key, decide)

    def active(self, key: str) -> Session | None:
        """The stored active session, expired or not (an admin view: nothing expires here)."""
        return self.store.active(key)

    def state(self, key: str) -> dict[str, object]:
        """`{"key": key, "active": <session JSON> | None}`, JSON-ready."""
        session = self.store.active(key)
        return {"key": key, "active": None if session is None else session.to_json(self.clock.now())}

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Every key's stored active session as JSON, with `expired` computed now."""
        now = self.clock.now()
        keys = self.store.keys()
        sessions = [self.store.active(key) for key in keys]  # a key may lose its session meanwhile
        return {s.key: s.to_json(now) for s in sessions if s is not None}

    def reset(self, key: str | None = None) -> None:
        self.store.reset(key)

    def history(self, key: str | None = None, limit: int | None = None) -> tuple[Session, ...]:
        """Ended sessions, newest first."""
        return self.store.history(key, limit)

    def _open(
        self,
        key: str,
        kind: SessionKind,
        model: str,
        requested: str,
        duration: int,
        now: float,
        draw_fail: Armed[str | DomainError | None],
    ) -> Session | DomainError:
        fail = draw_fail()
        if isinstance(fail, DomainError):
            return fail
        if fail is not None:
            return upstream_failure(kind, 500, fail)
        # 0 is falsy at the gateway: the user's automation default applies.
        expires = session_expiry(kind, now, duration or self.default_duration, minimum=self.min_duration)
        if isinstance(expires, CreateFailed):
            return expires
        return Session(self.ids.session_id(), key, kind, model, requested, now, expires)

    def _run(self, key: str, decide: Callable[[Session | None, float], Decision[T]]) -> T:
        step = self.store.transact(key, lambda current: decide(current, self.clock.now()), _ended_by)
        if isinstance(step.result, DomainError):
            raise step.result
        return step.result


def _ended_by(step: _Step[T]) -> tuple[Session, ...]:
    return step.ended


def _reusable(current: Session | None, now: float, resolved: str) -> TypeGuard[Session]:
    """R1: an active, unexpired model session on the same resolved model."""
    return (
        current is not None
        and not current.is_expired(now)
        and current.kind is SessionKind.MODEL
        and current.model == resolved
    )


def _end(current: Session | None, now: float, reason: EndReason) -> tuple[Session, ...]:
    """The old session as it ends before a new one opens (R6: an expired one ends as expired)."""
    return () if current is None else (current.ended(now, reason),)


def _ended(result: T | DomainError, session: Session, now: float, reason: EndReason = EndReason.EXPIRED) -> _Step[T]:
    return _Step(result, (session.ended(now, reason),))
