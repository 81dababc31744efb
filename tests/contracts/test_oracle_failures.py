"""The oracle predicts v1.14.0 on its failure paths (observed-v1.14.0.md): the 60-second sync, close faults."""

from __future__ import annotations

from contracts.oracle import SYNC_INTERVAL, Life, Oracle


def _oracle() -> Oracle:
    oracle = Oracle(models={"m": "0xm", "n": "0xn"}, default_model=None)
    oracle.opened("k", "0x1", "model", "0xm", expires_at=10 * SYNC_INTERVAL + 5)
    return oracle


def test_an_expired_session_is_forgotten_once_a_sync_pass_ran_after_its_expiry() -> None:
    oracle = _oracle()
    assert oracle.life("k", 10 * SYNC_INTERVAL + 30) is Life.EXPIRED  # no pass yet since the expiry
    assert oracle.book("k").session is not None
    assert oracle.life("k", 11 * SYNC_INTERVAL) is Life.NONE  # the pass at 660 s retired it
    assert (oracle.book("k").session, oracle.book("k").ended_by, oracle.ended["0x1"]) == (None, "R6", "R6")


def test_a_switch_uses_an_armed_close_failure_and_still_opens_the_new_session() -> None:
    oracle = _oracle()
    oracle.book("k").pending_close_fail = 1
    oracle.opened("k", "0x2", "model", "0xn", expires_at=9999.0)
    assert (oracle.book("k").pending_close_fail, oracle.book("k").session is not None) == (0, True)
    oracle.book("k").pending_close_fail = 1
    oracle.opened("k", "0x3", "bid", "0xb", expires_at=9999.0, rule="R3")  # a bid closes nothing
    assert oracle.book("k").pending_close_fail == 1


def test_a_dead_ping_whose_close_fails_keeps_the_session() -> None:
    oracle = _oracle()
    oracle.book("k").pending_close_fail = 1
    oracle.forget("k", "R5")
    assert (oracle.book("k").pending_close_fail, oracle.book("k").session is not None) == (0, True)
    oracle.forget("k", "R5")
    assert oracle.book("k").session is None
