"""The sequences of shared/reference/observed-v1.14.0.md sections 1-6 as data: request steps in, answers out.

Texts are copied from the observation record, not from the mock's constants: these tables check the
mock against what the real gateway answered. `S1`, `S2` in an expected body stand for session ids
(bound on first sight, compared by identity after); `<K>` stands for the key's prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MISTRAL, LLAMA, QWEN = "mistral-31-24b", "llama-3.3-70b", "qwen3-235b"
B1, B2 = "0x" + "b1" * 32, "0x" + "b2" * 32
PREFIX = "<K>"
CREATED = "Session created and associated with API key"
NOTE = "Private Key not set, using fallback key (FOR DEBUGGING ONLY)"
CHAT_500 = (
    "Server error '500 Internal Server Error' for url 'http://proxy-router:8082/v1/chat/completions'\n"
    "For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/500"
)
TOO_SHORT = 'Error from proxy router: Failed to create session: HTTP 500: {"error":"SessionTooShort"}'
BID_TOO_SHORT = 'Error from proxy router: Failed to create bid session: HTTP 500: {"error":"SessionTooShort"}'
VERIFY = "Unexpected error: 500: Session created but not valid in proxy router"
INT64 = (
    'Error from proxy router: Failed to create session: HTTP 400: {"error":"json: cannot unmarshal number '
    '9223372036854775808 into Go struct field OpenSessionRequest.sessionDuration of type int64"}'
)
BOOM = 'Error from proxy router: Failed to create session: HTTP 500: {"error":"boom"}'
BID_BOOM = 'Error from proxy router: Failed to create bid session: HTTP 500: {"error":"boom"}'
CLOSE_FAILED = "Error closing session: 500: Failed to close session"
UNIQUE_FIRST_LINE = (
    "Unexpected error: (sqlalchemy.dialects.postgresql.asyncpg.IntegrityError) <class "
    "'asyncpg.exceptions.UniqueViolationError'>: duplicate key value violates unique constraint "
    '"sessions_active_api_key_unique"'
)
EXPIRE = 3605  # seconds: past a 3600 s session's end, before the next sync pass (sessions open 1 s after one)


@dataclass(frozen=True)
class Step:
    """One request (or admin action) and the answer the real gateway gave."""

    action: str  # model, bid, ping, close, approve, fault, advance, sync, orphans
    arg: Any = None
    duration: int | None = None
    status: int = 200
    body: Any = None
    options: dict[str, Any] = field(default_factory=dict)


def model(name: str, status: int = 200, body: Any = None, duration: int = 3600) -> Step:
    return Step("model", name, duration, status, body)


def bid(bid_id: str, status: int = 200, body: Any = None, duration: int = 3600) -> Step:
    return Step("bid", bid_id, duration, status, body)


def ping(body: Any) -> Step:
    return Step("ping", body=body)


def close(body: Any, status: int = 200) -> Step:
    return Step("close", status=status, body=body)


def approve(body: Any) -> Step:
    return Step("approve", body=body)


def fault(kind: str, **options: Any) -> Step:
    return Step("fault", kind, options=options)


def advance(seconds: int) -> Step:
    return Step("advance", seconds)


def sync() -> Step:
    return Step("sync")


def orphans(count: int) -> Step:
    """The admin state's chain view: how many sessions are open on chain with no gateway row."""
    return Step("orphans", count)


def created(session: str, name: str) -> dict[str, Any]:
    return {"success": True, "message": CREATED, "session_id": session, "api_key_prefix": PREFIX, "model": name}


def bid_created(session: str) -> dict[str, Any]:
    return {"success": True, "message": CREATED, "session_id": session, "api_key_prefix": PREFIX, "note": NOTE}


def alive(session: str) -> dict[str, Any]:
    return {"status": "alive", "message": "Session is alive", "session_id": session, "success": True}


def dead(session: str, error: str = CHAT_500) -> dict[str, Any]:
    message = "Session is dead and has been closed"
    return {"status": "dead", "message": message, "session_id": session, "success": False, "error": error}


def expired(session: str) -> dict[str, Any]:
    message = "Session is expired and has been marked as inactive"
    return {"status": "expired", "message": message, "session_id": session, "success": False}


NO_SESSION = {"status": "no_session", "message": "No active session found for this API key", "success": False}
NONE_CLOSED = {"success": True, "message": "No active session found to close", "session_id": None}


def closed(session: str) -> dict[str, Any]:
    return {"success": True, "message": "Session closed successfully", "session_id": session}


def expired_closed(session: str) -> dict[str, Any]:
    return {"success": True, "message": "Expired session marked as inactive", "session_id": session}


def detail(text: str) -> dict[str, str]:
    return {"detail": text}


def approve_error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind}, "note": NOTE}


S1_MISTRAL = model(MISTRAL, body=created("S1", MISTRAL))
BOOM_ONCE = fault("create_fail", message="boom", count=1)  # the upstream open answers 500 {"error":"boom"}
FAILED_SWITCH = (S1_MISTRAL, model(LLAMA, 500, detail(TOO_SHORT), duration=299))

SEQUENCES: dict[str, tuple[Step, ...]] = {
    # 1.1 A model switch whose new session fails: S1 closed on chain, active in the gateway.
    "1.1 failed switch, ping": (*FAILED_SWITCH, ping(dead("S1")), ping(NO_SESSION)),
    "1.1 failed switch, close": (*FAILED_SWITCH, close(closed("S1")), ping(NO_SESSION)),
    "1.1 failed switch, same model": (
        *FAILED_SWITCH,
        model(MISTRAL, 500, detail(VERIFY)),
        ping(dead("S1")),
        ping(NO_SESSION),
    ),
    "1.1 failed switch, third model": (*FAILED_SWITCH, model(QWEN, body=created("S2", QWEN)), ping(alive("S2"))),
    "1.1 two failing switches": (*FAILED_SWITCH, model(QWEN, 500, detail(TOO_SHORT), duration=299), ping(dead("S1"))),
    "1.1 failed switch, the sync pass": (
        *FAILED_SWITCH,
        advance(60),
        ping(NO_SESSION),
        close(NONE_CLOSED),
        model(MISTRAL, body=created("S2", MISTRAL)),
    ),
    "1.1 failed switch, a pass on demand": (*FAILED_SWITCH, sync(), ping(NO_SESSION)),
    "1.1 int64 duration": (S1_MISTRAL, model(LLAMA, 500, detail(INT64), duration=2**63), ping(dead("S1"))),
    "1.1 date overflow": (
        S1_MISTRAL,
        model(LLAMA, 500, detail("Unexpected error: date value out of range"), duration=10**12),
        orphans(1),
        ping(dead("S1")),
    ),
    "1.1 upstream boom": (
        S1_MISTRAL,
        BOOM_ONCE,
        model(LLAMA, 500, detail(BOOM)),
        ping(dead("S1")),
        ping(NO_SESSION),
    ),
    "1.1 no previous session": (
        BOOM_ONCE,
        model(MISTRAL, 500, detail(BOOM)),
        ping(NO_SESSION),
        S1_MISTRAL,
        ping(alive("S1")),
    ),
    "1.1 same model, bad duration": (S1_MISTRAL, model(MISTRAL, body=created("S1", MISTRAL), duration=299)),
    # 1.2 A failed bidsession undoes its own deactivation.
    "1.2 failed bid, then same model": (
        S1_MISTRAL,
        bid(B1, 500, detail(BID_TOO_SHORT), duration=299),
        ping(alive("S1")),
        model(MISTRAL, body=created("S1", MISTRAL)),
    ),
    "1.2 failed bid, then a switch": (
        S1_MISTRAL,
        bid(B1, 500, detail(BID_TOO_SHORT), duration=299),
        model(LLAMA, body=created("S2", LLAMA)),
        ping(alive("S2")),
    ),
    "1.2 failed bid over a bid": (
        bid(B1, body=bid_created("S1")),
        bid(B2, 500, detail(BID_TOO_SHORT), duration=299),
        ping(alive("S1")),
        close(closed("S1")),
    ),
    "1.2 bid upstream boom": (
        S1_MISTRAL,
        BOOM_ONCE,
        bid(B1, 500, detail(BID_BOOM)),
        ping(alive("S1")),
    ),
    # 1.3 A failed verification rolls back its own close.
    "1.3 verification fails on a new key": (
        fault("verify_fail", count=1),
        model(MISTRAL, 500, detail(VERIFY)),
        ping(NO_SESSION),
        S1_MISTRAL,
    ),
    "1.3 verification of a reused session fails": (
        S1_MISTRAL,
        fault("verify_fail", count=1),
        model(MISTRAL, 500, detail(VERIFY)),
        ping(dead("S1")),
        ping(NO_SESSION),
    ),
    "1.3 verification of a switch fails": (
        S1_MISTRAL,
        fault("verify_fail", count=1),
        model(LLAMA, 500, detail(VERIFY)),
        ping(dead("S1")),
        model(LLAMA, body=created("S2", LLAMA)),
    ),
    # 1.4 Close failures.
    "1.4 close fails twice": (
        S1_MISTRAL,
        fault("close_fail", count=2),
        close(detail(CLOSE_FAILED), 500),
        close(detail(CLOSE_FAILED), 500),
        ping(alive("S1")),
        close(closed("S1")),
        ping(NO_SESSION),
    ),
    "1.4 a switch ignores a failed close": (
        S1_MISTRAL,
        fault("close_fail", count=1),
        model(LLAMA, body=created("S2", LLAMA)),
        ping(alive("S2")),
        orphans(1),
    ),
    "1.4 dead ping whose close fails": (
        S1_MISTRAL,
        fault("ping_dead", count=2),
        fault("close_fail", count=2),
        ping(dead("S1")),
        ping(dead("S1")),
        ping(alive("S1")),
        close(closed("S1")),
    ),
    "1.4 dead ping, empty stream": (
        S1_MISTRAL,
        fault("ping_dead", count=1, message="No response received from chat completion"),
        ping(dead("S1", "No response received from chat completion")),
        ping(NO_SESSION),
    ),
    # 1.5 Expiry interplay (expired before the next sync pass).
    "1.5 expired, failed switch": (
        S1_MISTRAL,
        advance(EXPIRE),
        model(LLAMA, 500, detail(TOO_SHORT), duration=299),
        ping(expired("S1")),
        ping(NO_SESSION),
    ),
    "1.5 expired, same model": (
        S1_MISTRAL,
        advance(EXPIRE),
        model(MISTRAL, body=created("S2", MISTRAL)),
        ping(alive("S2")),
    ),
    "1.5 expired, close fault unused": (
        S1_MISTRAL,
        advance(EXPIRE),
        fault("close_fail", count=1),
        close(expired_closed("S1")),
        ping(NO_SESSION),
    ),
    "1.5 expired, then the sync pass": (S1_MISTRAL, advance(EXPIRE), advance(60), ping(NO_SESSION)),
    # 5 Approve reports the upstream failure class.
    "5 approve": (
        approve({"tx": "TX", "note": NOTE}),
        fault("approve_error", message="boom", count=1),
        approve(approve_error('HTTP 500: {"error":"boom"}', "server_error")),
        fault("approve_error", message="bad amount", status=400, count=1),
        approve(approve_error('HTTP 400: {"error":"bad amount"}', "client_error")),
        fault("upstream_unreachable", count=1),
        approve(approve_error("Request failed after 3 attempts: All connection attempts failed", "network_error")),
    ),
    "5 bid, upstream unreachable": (
        fault("upstream_unreachable", count=1),
        bid(
            B1,
            500,
            detail(
                "Error from proxy router: Failed to create bid session: "
                "Request failed after 3 attempts: All connection attempts failed"
            ),
        ),
        ping(NO_SESSION),
    ),
    "create_fail with the upstream's 400": (
        fault("create_fail", status=400, message="bad request", count=1),
        model(
            MISTRAL, 500, detail('Error from proxy router: Failed to create session: HTTP 400: {"error":"bad request"}')
        ),
    ),
}
