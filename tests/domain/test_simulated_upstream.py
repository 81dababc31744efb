"""The simulated proxy-router's session steps: the armed faults each takes, in the gateway's order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mockserver.domain import (
    FIRST_TRY,
    BidTable,
    CreateFailed,
    CreateRefused,
    FakeClock,
    FaultKind,
    FaultPlan,
    Opening,
    Prompt,
    QueuedReply,
    ReplyQueue,
    SessionKind,
    SimulatedUpstream,
    UpstreamFailed,
    UpstreamUnreachable,
    immediate,
)
from mockserver.domain.upstream import AUTOMATION_DISABLED, CHAT_FAILED
from tests.domain.conftest import BID, KEY, OTHER_KEY

SESSION_ID = "0x" + "5e" * 32


@pytest.fixture
def upstream(clock: FakeClock, faults: FaultPlan) -> SimulatedUpstream:
    return SimulatedUpstream(None, clock, faults, ReplyQueue(), BidTable([BID], strict=True))


def test_a_strict_bid_table_refuses_an_unknown_bid_before_any_armed_fault(
    upstream: SimulatedUpstream, faults: FaultPlan
) -> None:
    immediate(faults.arm(FaultKind.CREATE_FAIL, count=1))
    refusal = immediate(upstream.open_session(KEY, Opening(SessionKind.BID, "0xunknown", 3600), FIRST_TRY))
    assert isinstance(refusal, CreateFailed)
    assert (
        refusal.detail == 'Error from proxy router: Failed to create bid session: HTTP 500: {"error":"bid not found"}'
    )
    assert [fault.kind for fault in faults.list()] == [FaultKind.CREATE_FAIL]  # not taken
    known = immediate(upstream.open_session(KEY, Opening(SessionKind.BID, BID, 3600), FIRST_TRY))
    assert known is not None  # a known bid passes the table and meets the armed fault
    assert known.detail.endswith('HTTP 500: {"error":"provider unavailable"}')
    assert faults.list() == ()


def test_the_first_create_step_an_armed_fault_breaks_decides(upstream: SimulatedUpstream, faults: FaultPlan) -> None:
    for kind in (FaultKind.CREATE_FAIL, FaultKind.NO_SIGNING_KEY, FaultKind.AUTOMATION_DISABLED):
        immediate(faults.arm(kind, key=KEY))
    opening = Opening(SessionKind.MODEL, "mistral-31-24b", 3600)
    refusal = immediate(upstream.open_session(KEY, opening, FIRST_TRY))
    assert isinstance(refusal, CreateRefused)  # the signing key comes before the proxy-router's answer
    assert refusal.detail == "No private key found and no fallback key configured"
    automation = immediate(upstream.open_session(KEY, Opening(SessionKind.MODEL, "mistral-31-24b", 0), FIRST_TRY))
    assert automation is not None  # the automation setting is consulted only at duration 0
    assert automation.detail == f"Unexpected error: {AUTOMATION_DISABLED}"
    assert immediate(upstream.open_session(OTHER_KEY, opening, FIRST_TRY)) is None  # another key's faults


def test_verify_close_and_the_test_chat_answer_from_their_own_faults(
    upstream: SimulatedUpstream, faults: FaultPlan
) -> None:
    steps = (upstream.verify_session, upstream.close_session)
    assert [immediate(step(KEY, SESSION_ID, FIRST_TRY)) for step in steps] == [True, True]
    assert (
        immediate(upstream.ping_session(KEY, SESSION_ID, FIRST_TRY)),
        immediate(upstream.ping_error(KEY, FIRST_TRY)),
    ) == (None, None)
    for kind in (FaultKind.VERIFY_FAIL, FaultKind.CLOSE_FAIL, FaultKind.PING_DEAD, FaultKind.PING_ERROR):
        immediate(faults.arm(kind, count=1))
    assert [immediate(step(KEY, SESSION_ID, FIRST_TRY)) for step in steps] == [False, False]
    assert immediate(upstream.ping_session(KEY, SESSION_ID, FIRST_TRY)) == CHAT_FAILED  # the default text: httpx's 500
    assert immediate(upstream.ping_error(KEY, FIRST_TRY)) == "database is locked"
    assert faults.list() == ()


def test_a_chat_on_a_session_the_chain_does_not_serve_fails_after_the_armed_faults(
    upstream: SimulatedUpstream, faults: FaultPlan
) -> None:
    unserved = Prompt(KEY, SESSION_ID, "m", [{"role": "user", "content": "hi"}], "session expired")
    immediate(faults.arm(FaultKind.CHAT_UNREACHABLE, key=KEY, count=1))
    with pytest.raises(UpstreamUnreachable):
        immediate(upstream.complete(unserved))  # the proxy-router's own failure first
    with pytest.raises(UpstreamFailed, match="session expired") as failed:
        immediate(upstream.embed(unserved, ["hi"], None, None))
    assert (failed.value.status, failed.value.body) == (500, '{"error":"session expired"}')
    assert immediate(upstream.complete(replace(unserved, chain_error=None))).body["model"] == "m"


def test_a_reply_queued_for_another_key_stays_queued() -> None:
    replies = ReplyQueue()
    queued = immediate(replies.push(QueuedReply(key=OTHER_KEY, content="for the other key")))
    assert immediate(replies.take(KEY)) is None
    assert replies.listed() == (queued,)
    assert immediate(replies.take(OTHER_KEY)) == queued
    assert replies.listed() == ()
