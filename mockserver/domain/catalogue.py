"""The gateway's error catalogue: which armed fault breaks which step, with the gateway's exact text.

The create steps are listed in the gateway's own order (gateway-behaviour.md 3.1 and 3.2), so when
several faults are armed the first step that breaks decides the answer. Texts nested inside the
gateway's `except Exception` come out re-wrapped as "Unexpected error: <status>: <detail>" (2.3).
"""

from __future__ import annotations

from mockserver.domain.errors import (
    AuthBackendFailed,
    AuthenticationFailed,
    CloseFailed,
    CreateFailed,
    CreateRefused,
    DomainError,
    KeyLookupFailed,
)
from mockserver.domain.faults import Fault, FaultKind
from mockserver.domain.keys import NO_USER
from mockserver.domain.sessions import SessionKind
from mockserver.domain.upstream import automation_off, upstream_failure

KEY_NOT_FOUND = "API key not found"
NO_SIGNING_KEY = "No private key found and no fallback key configured"
APPROVE_NO_SIGNING_KEY = "No private key found and no fallback key configured. Please set up your private key."

AUTH_STEPS = (FaultKind.AUTH_BACKEND, FaultKind.AUTH_NO_USER, FaultKind.AUTH_KEY_NOT_FOUND)
CREATE_STEPS = {
    SessionKind.MODEL: (
        FaultKind.KEY_ROW_VANISHED,
        FaultKind.AUTOMATION_DISABLED,
        FaultKind.DEFAULT_MODEL_ERROR,
        FaultKind.NO_SIGNING_KEY,
        FaultKind.BAD_BLOCKCHAIN_ID,
        FaultKind.CREATE_FAIL,
        FaultKind.UPSTREAM_UNREACHABLE,
        FaultKind.NO_SESSION_ID,
    ),
    SessionKind.BID: (
        FaultKind.MISSING_ENVIRONMENT,
        FaultKind.NO_SIGNING_KEY,
        FaultKind.CREATE_FAIL,
        FaultKind.UPSTREAM_UNREACHABLE,
        FaultKind.NO_SESSION_ID,
    ),
}
_WHAT = {SessionKind.MODEL: "session", SessionKind.BID: "bid session"}


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
        attempts = f"Request failed after 3 attempts: {fault.text}"
        return CreateFailed(f"Error from proxy router: Failed to create {_WHAT[kind]}: {attempts}")
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


def close_error(fault: Fault) -> CloseFailed:
    return CloseFailed(f"Error closing session: {fault.text}")
