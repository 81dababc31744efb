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
