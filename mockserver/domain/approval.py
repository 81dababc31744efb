"""The approve operation: a transaction hash, or the proxy-router's error (sent with HTTP 200)."""

from __future__ import annotations

from dataclasses import dataclass

from mockserver.domain.faults import Fault
from mockserver.domain.ids import IdSource

APPROVE_ERROR_TYPE = "server_error"


@dataclass(frozen=True)
class ApproveOutcome:
    """Either `tx` or an error (`{"error": {"message", "type"}}` in the gateway's body)."""

    tx: str | None
    error_message: str | None = None
    error_type: str | None = None


def approve(ids: IdSource, *, fault: Fault | None) -> ApproveOutcome:
    """Approve spending: a new tx hash, unless an APPROVE_ERROR fault was taken for this call."""
    if fault is None:
        return ApproveOutcome(tx=ids.tx_hash())
    message = fault.text
    return ApproveOutcome(tx=None, error_message=message, error_type=APPROVE_ERROR_TYPE)
