"""The gateway's error catalogue: which armed fault breaks which step, with the gateway's exact text.

The create steps are listed in the gateway's own order (gateway-behaviour.md 3.1 and 3.2), so when
several faults are armed the first step that breaks decides the answer. Texts nested inside the
gateway's `except Exception` come out re-wrapped as "Unexpected error: <status>: <detail>" (2.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from mockserver.domain.errors import (
    AuthBackendFailed,
    AuthenticationFailed,
    CloseFailed,
    CreateFailed,
    CreateRefused,
    DomainError,
    KeyLookupFailed,
    UpstreamFailed,
    UpstreamUnreachable,
)
from mockserver.domain.faults import Fault, FaultKind
from mockserver.domain.keys import NO_USER
from mockserver.domain.sessions import SessionKind
from mockserver.domain.upstream import UNREACHABLE, automation_off, create_failure, error_body, upstream_failure

KEY_NOT_FOUND = "API key not found"
NO_SIGNING_KEY = "No private key found and no fallback key configured"
NO_ACTIVE_SESSION = "No session ID provided in request and no active session found for API key"
APPROVE_NO_SIGNING_KEY = "No private key found and no fallback key configured. Please set up your private key."


class Step(Enum):
    """A place where the gateway meets a failure, and the interface that takes its faults there."""

    REQUEST = "before the handler, any operation (the web pipeline)"
    AUTH = "the auth backend, every keyed operation (`AuthBackend`)"
    KEY_ROW = "the key's row, a chat or embeddings without `session_id` (`KeyRows`)"
    MODELS = "the models list's source (`ModelSource`)"
    SIGNING_KEY = "approve's signing key (`SigningKeys`)"
    APPROVE = "approve's call (`Upstream.approve_spending`)"
    OPEN_MODEL = "a model session's opening: modelsession, a chat's (`Upstream.open_session`)"
    OPEN_BID = "bidsession's opening (`Upstream.open_session`)"
    VERIFY = "modelsession's verification (`Upstream.verify_session`)"
    CLOSE = "any close: closesession, a switch's, a dead ping's (`Upstream.close_session`)"
    CLOSE_ROUTE = "closesession's own error (`Upstream.close_error`)"
    PING = "pingsession's test chat (`Upstream.ping_session`)"
    PING_ROUTE = "pingsession's own error (`Upstream.ping_error`)"
    CHAT = "each chat or embeddings attempt (`Upstream.complete`, `Upstream.embed`)"


STEPS: Mapping[Step, tuple[FaultKind, ...]] = {
    Step.REQUEST: (FaultKind.LATENCY,),
    Step.AUTH: (FaultKind.AUTH_BACKEND, FaultKind.AUTH_NO_USER, FaultKind.AUTH_KEY_NOT_FOUND),
    Step.KEY_ROW: (FaultKind.KEY_ROW_VANISHED,),
    Step.MODELS: (FaultKind.MODELS_ERROR,),
    Step.SIGNING_KEY: (FaultKind.NO_SIGNING_KEY,),
    Step.APPROVE: (FaultKind.UPSTREAM_UNREACHABLE, FaultKind.APPROVE_ERROR),
    Step.OPEN_MODEL: (
        FaultKind.KEY_ROW_VANISHED,
        FaultKind.AUTOMATION_DISABLED,  # only with sessionDuration 0, which consults the automation setting
        FaultKind.DEFAULT_MODEL_ERROR,
        FaultKind.NO_SIGNING_KEY,
        FaultKind.BAD_BLOCKCHAIN_ID,
        FaultKind.CREATE_FAIL,
        FaultKind.UPSTREAM_UNREACHABLE,
        FaultKind.NO_SESSION_ID,
    ),
    Step.OPEN_BID: (
        FaultKind.MISSING_ENVIRONMENT,
        FaultKind.NO_SIGNING_KEY,
        FaultKind.CREATE_FAIL,
        FaultKind.UPSTREAM_UNREACHABLE,
        FaultKind.NO_SESSION_ID,
    ),
    Step.VERIFY: (FaultKind.VERIFY_FAIL,),
    Step.CLOSE: (FaultKind.CLOSE_FAIL,),
    Step.CLOSE_ROUTE: (FaultKind.CLOSE_ERROR,),
    Step.PING: (FaultKind.PING_DEAD,),
    Step.PING_ROUTE: (FaultKind.PING_ERROR,),
    Step.CHAT: (FaultKind.CHAT_UNREACHABLE, FaultKind.SESSION_EXPIRED, FaultKind.CHAT_UPSTREAM_ERROR),
}
"""Which step takes which fault kinds: the one table. At a step the kinds are taken in this order (the
gateway's), and the first armed one breaks it. Adding a kind: here, its step's error below, admin.yaml."""
OPENING = {SessionKind.MODEL: Step.OPEN_MODEL, SessionKind.BID: Step.OPEN_BID}


def auth_error(fault: Fault) -> DomainError:
    """The error an armed auth-step fault raises before any validation."""
    if fault.kind is FaultKind.AUTH_NO_USER:
        return AuthenticationFailed(NO_USER)
    if fault.kind is FaultKind.AUTH_KEY_NOT_FOUND:
        return KeyLookupFailed(KEY_NOT_FOUND)
    return AuthBackendFailed(f"Unexpected error validating API key: {fault.text}")


def create_error(fault: Fault, kind: SessionKind, requested: str) -> DomainError:
    """The error an armed create-step fault raises; `requested` is the model or bid id as sent."""
    if fault.kind is FaultKind.CREATE_FAIL:
        return upstream_failure(kind, fault.status or 500, fault.text, fault.body)
    if fault.kind is FaultKind.UPSTREAM_UNREACHABLE:
        return create_failure(kind, f"Request failed after 3 attempts: {fault.text}")
    return (_model_error if kind is SessionKind.MODEL else _bid_error)(fault, requested)


def _model_error(fault: Fault, requested: str) -> DomainError:
    texts = {
        FaultKind.NO_SIGNING_KEY: NO_SIGNING_KEY,
        FaultKind.BAD_BLOCKCHAIN_ID: (
            f"Invalid blockchain ID format: {fault.message or requested}. Expected hex string starting with '0x'"
        ),
        FaultKind.NO_SESSION_ID: "No session ID found in proxy router response",
        FaultKind.DEFAULT_MODEL_ERROR: f"Error getting default model: {fault.text}",
    }
    if fault.kind in texts:
        return CreateRefused(texts[fault.kind])
    if fault.kind is FaultKind.AUTOMATION_DISABLED:
        return automation_off()
    return CreateFailed("Unexpected error: 500: Failed to create new session")


def _bid_error(fault: Fault, requested: str) -> DomainError:
    if fault.kind is FaultKind.MISSING_ENVIRONMENT:
        nested = f"500: Missing required environment variables: {fault.text}"
    elif fault.kind is FaultKind.NO_SIGNING_KEY:
        nested = f"400: {NO_SIGNING_KEY}"
    else:
        nested = "500: Invalid session response from proxy-router - no session ID found"
    return CreateFailed(f"Unexpected error: {nested}")


def close_error(text: str) -> CloseFailed:
    """closesession's 500 for an unexpected exception (the session is left as it was)."""
    return CloseFailed(f"Error closing session: {text}")


def chat_error(fault: Fault) -> UpstreamFailed | UpstreamUnreachable:
    """The proxy-router's failure an armed chat-step fault stands for."""
    if fault.kind is FaultKind.CHAT_UNREACHABLE:
        return UpstreamUnreachable(fault.message or UNREACHABLE)
    if fault.kind is FaultKind.SESSION_EXPIRED:
        return UpstreamFailed(500, error_body("session expired"))
    return UpstreamFailed(fault.status or 500, fault.body or error_body(fault.message or "provider error"))
