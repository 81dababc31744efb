"""Session values and operation outcomes; transitions build new frozen values (R1-R6)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import Enum, StrEnum


class SessionKind(StrEnum):
    """How a session was opened (the gateway's `sessions.type`: "automated" or "bid")."""

    MODEL = "model"
    BID = "bid"


class EndReason(StrEnum):
    """Why a session stopped being the key's active session."""

    SWITCHED = "switched"  # R2: modelsession on another model closed it
    DEACTIVATED = "deactivated"  # R3: bidsession marked it inactive, no close
    CLOSED = "closed"  # R4: closesession
    EXPIRED = "expired"  # R6: found expired by any operation
    DEAD = "dead"  # R5: ping found it dead and closed it
    VERIFY_FAILED = "verify_failed"  # modelsession: created but not valid upstream
    CHAIN_CLOSED = "chain_closed"  # the background sync found it closed on chain


@dataclass(frozen=True)
class Session:
    """One session of one key; `key` is the key's 9-character prefix (its identity)."""

    session_id: str
    key: str
    kind: SessionKind
    model: str  # the resolved model id, or the bid id for bid sessions (gateway section 4.1)
    requested: str  # the model_id or bid_id exactly as sent
    created_at: float
    expires_at: float
    closed_at: float | None = None
    close_reason: str | None = None

    def is_expired(self, now: float) -> bool:
        """R6: strictly after `expires_at`, as the gateway's `utcnow() > expires_at`."""
        return now > self.expires_at

    def ended(self, now: float, reason: EndReason) -> Session:
        """This session as it ends at `now`; a session found expired ends as EXPIRED."""
        return replace(self, closed_at=now, close_reason=EndReason.EXPIRED if self.is_expired(now) else reason)

    def to_json(self, now: float) -> dict[str, object]:
        """The session's fields as JSON-ready values, plus whether it is expired at `now`."""
        fields = asdict(self)
        fields.update(kind=str(self.kind), close_reason=_text(self.close_reason), expired=self.is_expired(now))
        return fields


@dataclass(frozen=True)
class KeyRecord:
    """One key's sessions in the gateway's two views (observed-v1.14.0.md section 0).

    `active` is the gateway database's view: the newest active row, what ping, close and create
    read. `chain` is the chain's view: the key's sessions still open on chain (the active one while
    it is open, and any the database forgot: bid-race losers, date-overflow orphans, a switch whose
    close failed). A request's writes to `active` are kept only when it succeeds; `chain` keeps
    every change. `synced_at` is the time of the last background sync pass applied.
    """

    active: Session | None = None
    chain: tuple[Session, ...] = ()
    synced_at: float = 0.0

    def open_on_chain(self, session_id: str) -> bool:
        return any(s.session_id == session_id for s in self.chain)

    @property
    def empty(self) -> bool:
        return self.active is None and not self.chain

    def orphans(self) -> tuple[Session, ...]:
        """The sessions open on chain that the gateway's database does not hold as active."""
        active = None if self.active is None else self.active.session_id
        return tuple(s for s in self.chain if s.session_id != active)


def _text(reason: str | None) -> str | None:
    return None if reason is None else str(reason)


class CloseKind(Enum):
    """R4: what closesession found; the web layer picks the message."""

    NONE = "none"
    EXPIRED = "expired"
    CLOSED = "closed"


@dataclass(frozen=True)
class CloseOutcome:
    kind: CloseKind
    session_id: str | None


class PingKind(Enum):
    """R5: the pingsession `status` values."""

    NO_SESSION = "no_session"
    EXPIRED = "expired"
    ALIVE = "alive"
    DEAD = "dead"
    ERROR = "error"


@dataclass(frozen=True)
class PingOutcome:
    kind: PingKind
    session_id: str | None
    error: str | None = None
