"""The mock's domain: keys, models, the session book, faults, clock and ids (standard library only)."""

from mockserver.domain.approval import APPROVE_ERROR_TYPE, ApproveOutcome, approve
from mockserver.domain.book import SessionBook
from mockserver.domain.clock import FAKE_START, MAX_TIME, Clock, FakeClock, OffsetClock, SystemClock
from mockserver.domain.errors import (
    AuthenticationFailed,
    CloseFailed,
    CreateFailed,
    DomainError,
    InvalidFault,
    InvalidKeyFormat,
    InvalidTable,
    InvalidTime,
    UnknownKey,
)
from mockserver.domain.faults import DEFAULT_MESSAGES, Fault, FaultKind, FaultPlan
from mockserver.domain.ids import IdSource
from mockserver.domain.keys import (
    API_KEY_MISSING,
    INVALID_FORMAT,
    INVALID_KEY,
    ApiKey,
    KeyRegistry,
    is_well_formed,
    key_prefix,
    parse_authorization,
)
from mockserver.domain.models import DEFAULT_MODEL, BidTable, Model, ModelTable
from mockserver.domain.sessions import (
    CloseKind,
    CloseOutcome,
    EndReason,
    PingKind,
    PingOutcome,
    Session,
    SessionKind,
)
from mockserver.domain.store import InMemoryStore, SessionStore
from mockserver.domain.upstream import (
    BID_NOT_FOUND,
    CLOSE_FAILED,
    SESSION_TOO_SHORT,
    VERIFY_FAILED,
    session_expiry,
    upstream_failure,
)

__all__ = [
    "API_KEY_MISSING",
    "APPROVE_ERROR_TYPE",
    "BID_NOT_FOUND",
    "CLOSE_FAILED",
    "DEFAULT_MESSAGES",
    "DEFAULT_MODEL",
    "FAKE_START",
    "INVALID_FORMAT",
    "INVALID_KEY",
    "MAX_TIME",
    "SESSION_TOO_SHORT",
    "VERIFY_FAILED",
    "ApiKey",
    "ApproveOutcome",
    "AuthenticationFailed",
    "BidTable",
    "Clock",
    "CloseFailed",
    "CloseKind",
    "CloseOutcome",
    "CreateFailed",
    "DomainError",
    "EndReason",
    "FakeClock",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "IdSource",
    "InMemoryStore",
    "InvalidFault",
    "InvalidKeyFormat",
    "InvalidTable",
    "InvalidTime",
    "KeyRegistry",
    "Model",
    "ModelTable",
    "OffsetClock",
    "PingKind",
    "PingOutcome",
    "Session",
    "SessionBook",
    "SessionKind",
    "SessionStore",
    "SystemClock",
    "UnknownKey",
    "approve",
    "is_well_formed",
    "key_prefix",
    "parse_authorization",
    "session_expiry",
    "upstream_failure",
]
