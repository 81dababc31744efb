"""Approve: a tx hash, or the armed error (which the gateway sends with HTTP 200)."""

from __future__ import annotations

import re

from mockserver.domain import ApproveOutcome, Fault, FaultKind, FaultPlan, IdSource, approve, immediate


def test_approve_returns_a_tx_hash_from_the_id_source() -> None:
    outcome = immediate(approve(IdSource(5), fault=None))
    assert outcome == ApproveOutcome(tx=immediate(IdSource(5).tx_hash()))
    assert outcome.tx is not None
    assert re.fullmatch(r"0x[0-9a-f]{64}", outcome.tx)


def test_approve_armed_error_carries_message_and_type() -> None:
    fault = immediate(FaultPlan().arm(FaultKind.APPROVE_ERROR, message="nonce too low"))
    assert immediate(approve(IdSource(5), fault=fault)) == ApproveOutcome(
        None, 'HTTP 500: {"error":"nonce too low"}', "server_error"
    )


def test_approve_reports_the_upstream_failure_class() -> None:
    client = immediate(FaultPlan().arm(FaultKind.APPROVE_ERROR, message="bad amount", status=400))
    assert immediate(approve(IdSource(), fault=client)) == ApproveOutcome(
        None, 'HTTP 400: {"error":"bad amount"}', "client_error"
    )
    raw = immediate(FaultPlan().arm(FaultKind.APPROVE_ERROR, status=502, body="<html>"))
    assert immediate(approve(IdSource(), fault=raw)) == ApproveOutcome(None, "HTTP 502: <html>", "server_error")
    unreachable = immediate(FaultPlan().arm(FaultKind.UPSTREAM_UNREACHABLE))
    text = "Request failed after 3 attempts: All connection attempts failed"
    assert immediate(approve(IdSource(), fault=unreachable)) == ApproveOutcome(None, text, "network_error")


def test_approve_fault_without_message_uses_the_default() -> None:
    outcome = immediate(approve(IdSource(), fault=Fault(FaultKind.APPROVE_ERROR)))
    assert outcome == ApproveOutcome(None, 'HTTP 500: {"error":"insufficient funds for gas"}', "server_error")
