"""The gateway's exact texts for failed session operations, and the duration rules (R6).

A new session's (non-zero) duration meets, in this order: the proxy-router decoding it into a Go
int64; the chain rejecting anything under 5 minutes (`SessionTooShort`); the gateway adding it to its
clock with `datetime + timedelta`, which can overflow. An armed create fault (see `SessionBook`)
comes before all of these: it stands for the proxy-router failing whatever it is sent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from mockserver.domain.errors import CreateFailed
from mockserver.domain.sessions import SessionKind

VERIFY_FAILED = "Unexpected error: 500: Session created but not valid in proxy router"
CLOSE_FAILED = "Error closing session: 500: Failed to close session"
BID_NOT_FOUND = "bid not found"
SESSION_TOO_SHORT = "SessionTooShort"
INT64_LIMIT = 2**63

_WHAT = {SessionKind.MODEL: "session", SessionKind.BID: "bid session"}


def upstream_failure(kind: SessionKind, status: int, error: str) -> CreateFailed:
    """The gateway's 500 text when the proxy-router answers `status` with `{"error": error}`."""
    body = json.dumps({"error": error}, ensure_ascii=False, separators=(",", ":"))
    return CreateFailed(f"Error from proxy router: Failed to create {_WHAT[kind]}: HTTP {status}: {body}")


def session_expiry(kind: SessionKind, created: float, duration: int, *, minimum: int) -> float | CreateFailed:
    """When a session opened at `created` for `duration` seconds expires, or why it cannot open."""
    failure = _check_duration(kind, duration, minimum=minimum)
    return _expiry(created, duration) if failure is None else failure


def _check_duration(kind: SessionKind, duration: int, *, minimum: int) -> CreateFailed | None:
    if not -INT64_LIMIT <= duration < INT64_LIMIT:
        field = "OpenSessionRequest.sessionDuration"
        return upstream_failure(
            kind, 400, f"json: cannot unmarshal number {duration} into Go struct field {field} of type int64"
        )
    if duration < minimum:
        return upstream_failure(kind, 500, SESSION_TOO_SHORT)
    return None


def _expiry(created: float, duration: int) -> float | CreateFailed:
    """`created + duration`, or the gateway's error when its datetime arithmetic overflows."""
    try:
        datetime.fromtimestamp(created, UTC) + timedelta(seconds=duration)
    except OverflowError as exc:
        return CreateFailed(f"Unexpected error: {exc}")
    return created + duration
