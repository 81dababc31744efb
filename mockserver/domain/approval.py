"""The approve operation: a transaction hash, or the proxy-router's error (sent with HTTP 200)."""

from __future__ import annotations

from dataclasses import dataclass

from mockserver.domain.faults import Fault, FaultKind
from mockserver.domain.ids import IdSource
from mockserver.domain.upstream import upstream_text

APPROVE_ERROR_TYPE = "server_error"
CLIENT_ERROR_TYPE = "client_error"
NETWORK_ERROR_TYPE = "network_error"


@dataclass(frozen=True)
class ApproveOutcome:
    """Either `tx` or an error (`{"error": {"message", "type"}}` in the gateway's body)."""

    tx: str | None
    error_message: str | None = None
    error_type: str | None = None


async def approve(ids: IdSource, *, fault: Fault | None) -> ApproveOutcome:
    """Approve spending: a new tx hash, unless a fault was taken for this call.

    The error's `type` is the proxy-router failure class (observed-v1.14.0.md section 5): an
    UPSTREAM_UNREACHABLE fault is a `network_error`, an APPROVE_ERROR fault a `client_error` for a
    4xx `status` and a `server_error` otherwise.
    """
    if fault is None:
        return ApproveOutcome(tx=await ids.tx_hash())
    if fault.kind is FaultKind.UPSTREAM_UNREACHABLE:
        return ApproveOutcome(None, f"Request failed after 3 attempts: {fault.text}", NETWORK_ERROR_TYPE)
    status = fault.status or 500
    kind = CLIENT_ERROR_TYPE if status < 500 else APPROVE_ERROR_TYPE
    return ApproveOutcome(tx=None, error_message=upstream_text(status, fault.text, fault.body), error_type=kind)
