"""An independent model of the session rules R1-R7: from the history of one run it predicts each answer.

Written from the rule list in the spec (`x-session-rules`), not from the mock's code: the two readings
check each other. Times are the target's clock (its admin clock when it has one, else this machine's).

It also knows how v1.14.0 fails (observed-v1.14.0.md): the gateway's background sync runs every
`SYNC_INTERVAL` seconds of the target's clock (the mock runs it at multiples of 60 s) and retires an
expired row (so ping answers `no_session`, not `expired`, once a pass ran after the expiry); the
upstream close a `close_fail` fault breaks is also the close of a model switch (which still succeeds,
leaving the old session open on chain) and of a dead ping (which then leaves the row active).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

# Expiry is judged at the target a little after the oracle reads the clock: within this margin an
# answer may go either way, and the oracle accepts both (and learns which it was).
MARGIN = 2.0
SYNC_INTERVAL = 60.0
# What embeddings without a model resolve to: the target's default embeddings model, which the oracle
# need not know (it is no model a modelsession or chat step names, so it is always another model).
EMBEDDINGS_DEFAULT = "(the default embeddings model)"


class Life(Enum):
    NONE = "none"
    ALIVE = "alive"
    EXPIRED = "expired"
    EITHER = "either"  # alive or expired: too close to the expiry to tell


@dataclass(frozen=True)
class Known:
    """The session the oracle believes a key has."""

    session_id: str
    kind: str  # "model" or "bid"
    on: str  # resolved model id, or the bid id
    expires_at: float


@dataclass
class KeyBook:
    session: Known | None = None
    ended_by: str | None = None  # the rule whose step ended the key's last session (to name a broken rule)
    opened_by: str | None = None  # the rule whose step gave the key its current session
    pending_dead: int = 0  # armed ping_dead faults not yet used (used only by a ping of a live session)
    pending_close_fail: int = 0  # armed close_fail faults (used only by a close of a live session)
    closed_on_chain: bool = False  # a failed switch closed the session on chain; the gateway still holds it


@dataclass
class Oracle:
    """Predictions for one run; `resolve` maps a model_id as sent to the model it means (or None)."""

    models: dict[str, str]  # name or blockchain id -> blockchain id
    default_model: str | None
    keys: dict[str, KeyBook] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    ended: dict[str, str] = field(default_factory=dict)  # session id -> the rule that ended it

    def book(self, key: str) -> KeyBook:
        return self.keys.setdefault(key, KeyBook())

    def resolve(self, model_id: str) -> str | None:
        return self.models.get(model_id, self.default_model)

    def life(self, key: str, now: float) -> Life:
        """The key's session at `now`; one a sync pass retired since it expired is forgotten (R6)."""
        session = self.book(key).session
        if session is not None and _synced_since(session.expires_at + MARGIN, now):
            self.forget(key, "R6")
            session = None
        if session is None:
            return Life.NONE
        if now > session.expires_at + MARGIN:
            return Life.EXPIRED
        return Life.ALIVE if now < session.expires_at - MARGIN else Life.EITHER

    def reusable(self, key: str, model_id: str, now: float) -> str | None:
        """R1: the session id a modelsession must return unchanged, if any (None: a new one)."""
        return self.reusable_on(key, str(self.resolve(model_id)), now)

    def reusable_on(self, key: str, resolved: str, now: float) -> str | None:
        """R1, C1: the session a request on the resolved model `resolved` must use unchanged (None: a new one)."""
        session = self.book(key).session
        if session is None or session.kind != "model" or session.on != resolved:
            return None
        return session.session_id if self.life(key, now) is not Life.EXPIRED else None

    def opened(self, key: str, session_id: str, kind: str, on: str, expires_at: float, rule: str = "R2") -> None:
        """The key's session is now `session_id`, given by a step of `rule` (R1/R2 model, R3 bid)."""
        book = self.book(key)
        if book.session is not None:
            self.ended[book.session.session_id] = "R3" if kind == "bid" else "R2"
            if kind == "model" and book.pending_close_fail:
                book.pending_close_fail -= 1  # the switch's close used the fault (and the switch went on)
        self.seen.add(session_id)
        book.session, book.closed_on_chain = Known(session_id, kind, on, expires_at), False
        book.opened_by = rule

    def forget(self, key: str, rule: str) -> None:
        """The key's session ended by `rule` (R4, R5 or R6); a dead ping whose close fails keeps it (R5)."""
        book = self.book(key)
        if rule == "R5" and book.pending_close_fail:
            book.pending_close_fail -= 1
            return
        if book.session is not None:
            self.ended[book.session.session_id] = rule
        book.session, book.closed_on_chain = None, False
        book.ended_by = rule

    def failed_create(self, key: str, kind: str, model_id: str, now: float) -> None:
        """A create answered 500: the gateway rolled its row back, but a model switch had already
        closed the key's live session on chain (observed-v1.14.0.md 1.1; a failed bid closes nothing)."""
        book = self.book(key)
        if kind != "model" or book.session is None or self.life(key, now) is not Life.ALIVE:
            return
        if self.reusable(key, model_id, now) is not None:
            return  # a reuse never reaches the chain (and a failed verification is not predicted here)
        if book.pending_close_fail:
            book.pending_close_fail -= 1  # the switch's close failed: the session stays open on chain
        else:
            book.closed_on_chain = True

    def ping_answers(self, key: str) -> set[tuple[str, str | None]]:
        """(status, session_id) pairs a ping may answer for a key whose session the chain has closed:
        `dead` with its id, or `no_session` once the background sync retired the row."""
        book = self.book(key)
        if book.session is None or not book.closed_on_chain:
            return set()
        return {("dead", book.session.session_id), ("no_session", None)}

    def blame(self, session_id: object, fallback: str) -> str:
        """The rule that should have ended `session_id`, if it had ended; else `fallback`."""
        return self.ended.get(session_id, fallback) if isinstance(session_id, str) else fallback


def _synced_since(moment: float, now: float) -> bool:
    """Whether a sync pass (at a multiple of `SYNC_INTERVAL`) ran after `moment` and by `now`."""
    return (now // SYNC_INTERVAL) * SYNC_INTERVAL > moment
