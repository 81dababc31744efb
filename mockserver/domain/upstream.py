"""The gateway's exact texts for failed session operations, and the duration rules (R6).

A new session's (non-zero) duration meets, in this order: the proxy-router decoding it into a Go
int64; the chain rejecting anything under 5 minutes (`SessionTooShort`); the gateway adding it to its
clock with `datetime + timedelta`, which can overflow (after the chain has opened the session: it is
left open on chain, an orphan). An armed create fault (`SimulatedUpstream.open_session`) comes first:
it stands for the proxy-router failing whatever it is sent.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from mockserver.domain.errors import CreateFailed
from mockserver.domain.sessions import SessionKind

VERIFY_FAILED = "Unexpected error: 500: Session created but not valid in proxy router"
CLOSE_FAILED = "Error closing session: 500: Failed to close session"
BID_NOT_FOUND = "bid not found"
SESSION_TOO_SHORT = "SessionTooShort"
INT64_LIMIT = 2**63
CHAT_FAILED = (
    "Server error '500 Internal Server Error' for url 'http://proxy-router:8082/v1/chat/completions'\n"
    "For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/500"
)
"""The ping's test chat on a session the chain has closed (httpx's text for the proxy-router's 500)."""
UNREACHABLE = "All connection attempts failed"
"""httpx's text when the proxy-router cannot be reached."""
ACTIVE_UNIQUE = "sessions_active_api_key_unique"
AUTOMATION_DISABLED = "Session automation is disabled. Please enable it in your Account settings to use Chat."

_WHAT = {SessionKind.MODEL: "session", SessionKind.BID: "bid session"}


def upstream_text(status: int, error: str, body: str | None = None) -> str:
    """`HTTP <status>: <body>`, the proxy-router's answer as the gateway quotes it; `{"error": error}` by default."""
    if body is None:
        body = json.dumps({"error": error}, ensure_ascii=False, separators=(",", ":"))
    return f"HTTP {status}: {body}"


def automation_off() -> CreateFailed:
    """modelsession's 500 when a `sessionDuration` of 0 asks for the key's automation setting and automation is
    off for the key or system-wide (`session_service.create_automated_session` at v1.14.0)."""
    return CreateFailed(f"Unexpected error: {AUTOMATION_DISABLED}")


def upstream_failure(kind: SessionKind, status: int, error: str, body: str | None = None) -> CreateFailed:
    """The gateway's 500 text when the proxy-router answers `status` with `body` (`{"error": error}`)."""
    return create_failure(kind, upstream_text(status, error, body))


def create_failure(kind: SessionKind, detail: str) -> CreateFailed:
    """The gateway's 500 when its call to the proxy-router to open a session fails."""
    return CreateFailed(f"Error from proxy router: Failed to create {_WHAT[kind]}: {detail}")


def error_body(text: str) -> str:
    """The proxy-router's JSON error body, compact as Go writes it."""
    return json.dumps({"error": text}, separators=(",", ":"))


def duration_failure(kind: SessionKind, duration: int, *, minimum: int) -> CreateFailed | None:
    """Why the proxy-router or the chain refuses to open a session for `duration` seconds, if they do."""
    if not -INT64_LIMIT <= duration < INT64_LIMIT:
        field = "OpenSessionRequest.sessionDuration"
        return upstream_failure(
            kind, 400, f"json: cannot unmarshal number {duration} into Go struct field {field} of type int64"
        )
    if duration < minimum:
        return upstream_failure(kind, 500, SESSION_TOO_SHORT)
    return None


def expiry_failure(created: float, duration: int) -> CreateFailed | None:
    """The gateway's error when its `datetime + timedelta` for the new row's `expires_at` overflows."""
    try:
        datetime.fromtimestamp(created, UTC) + timedelta(seconds=duration)
    except OverflowError as exc:
        return CreateFailed(f"Unexpected error: {exc}")
    return None


def unique_violation(key: str, session_id: str, bid_id: str, created: float, expires: float) -> CreateFailed:
    """The gateway's 500 when a bid session's row meets another request's active row of the same key.

    The first line is the gateway's exact text; the rest renders its SQLAlchemy error with the mock's
    values (row ids derived from the key prefix).
    """
    digest = hashlib.sha256(key.encode()).hexdigest()
    row, user = int(digest[:6], 16) % 100_000 + 1, int(digest[6:12], 16) % 10_000 + 1
    columns = "id, user_id, api_key_id, model, type, created_at, expires_at, is_active"
    types = ("VARCHAR", "INTEGER", "INTEGER", "VARCHAR", "VARCHAR", "TIMESTAMP WITHOUT TIME ZONE")
    placeholders = ", ".join(f"${n}::{t}" for n, t in enumerate((*types, types[-1], "BOOLEAN"), start=1))
    values = f"({session_id!r}, {user}, {row}, {bid_id!r}, 'bid', {_naive(created)}, {_naive(expires)}, True)"
    return CreateFailed(
        "Unexpected error: (sqlalchemy.dialects.postgresql.asyncpg.IntegrityError) "
        "<class 'asyncpg.exceptions.UniqueViolationError'>: duplicate key value violates unique constraint "
        f'"{ACTIVE_UNIQUE}"\nDETAIL:  Key (api_key_id, is_active)=({row}, t) already exists.\n'
        f"[SQL: INSERT INTO sessions ({columns}) VALUES ({placeholders})]\n"
        f"[parameters: {values}]\n(Background on this error at: https://sqlalche.me/e/20/gkpj)"
    )


def _naive(t: float) -> str:
    """A time as the gateway's naive UTC `datetime` prints in SQLAlchemy's parameters."""
    return repr(datetime.fromtimestamp(t, UTC).replace(tzinfo=None))
