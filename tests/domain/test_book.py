"""The session book, rule by rule (R1-R7)."""

from __future__ import annotations

import pytest

from mockserver.domain import (
    Attempt,
    BidTable,
    CloseFailed,
    CloseKind,
    CloseOutcome,
    CreateFailed,
    FakeClock,
    FaultKind,
    FaultPlan,
    IdSource,
    InMemoryStore,
    KeyRecord,
    PingKind,
    PingOutcome,
    ReplyQueue,
    Session,
    SessionBook,
    SessionKind,
    SimulatedUpstream,
    immediate,
)
from mockserver.domain.book import CHAIN_LIMIT
from mockserver.domain.store import Change, Ended, T
from mockserver.domain.upstream import AUTOMATION_DISABLED, CHAT_FAILED
from tests.domain.conftest import BID, KEY, LLAMA, MISTRAL, OTHER_KEY, T0, Arm, BookFactory

CREATE_FAILED = 'Error from proxy router: Failed to create session: HTTP 500: {"error":"provider unavailable"}'
TOO_SHORT = 'Error from proxy router: Failed to create session: HTTP 500: {"error":"SessionTooShort"}'
BID_FAILED = 'Error from proxy router: Failed to create bid session: HTTP 500: {"error":"provider unavailable"}'
BID_TOO_SHORT = 'Error from proxy router: Failed to create bid session: HTTP 500: {"error":"SessionTooShort"}'
VERIFY = "Unexpected error: 500: Session created but not valid in proxy router"


def _open(book: SessionBook, resolved: str = MISTRAL, duration: int = 3600, key: str = KEY) -> Session:
    return immediate(book.create_model_session(key, "requested", resolved, duration))


def _reasons(book: SessionBook, key: str = KEY) -> list[tuple[str, str | None]]:
    return [(s.session_id, s.close_reason) for s in immediate(book.history(key))]


def test_book_opens_a_model_session(book: SessionBook) -> None:
    session = immediate(book.create_model_session(KEY, "mistral-31-24b", MISTRAL, 600))
    assert session == Session(session.session_id, KEY, SessionKind.MODEL, MISTRAL, "mistral-31-24b", T0, T0 + 600)
    assert immediate(book.active(KEY)) == session
    assert immediate(book.history()) == ()


def test_book_r1_same_model_reuses_id_and_expiry(book: SessionBook, clock: FakeClock) -> None:
    first = _open(book, duration=600)
    immediate(clock.advance(500))
    again = immediate(book.create_model_session(KEY, "another spelling", MISTRAL, 7200))
    assert again == first
    assert again.expires_at == T0 + 600
    assert immediate(book.history()) == ()


def test_book_r1_reuse_ignores_create_faults_and_durations(book: SessionBook, arm: Arm) -> None:
    first = _open(book)
    with arm(fail="provider unavailable") as faults:
        again = immediate(book.create_model_session(KEY, "x", MISTRAL, 1))
        assert [f.kind for f in faults.list()] == [FaultKind.CREATE_FAIL]  # not even drawn on the reuse path
    assert again == first == immediate(book.active(KEY))


def test_book_r1_a_reused_session_that_fails_verification_is_closed_on_chain_only(book: SessionBook, arm: Arm) -> None:
    first = _open(book)
    with arm(verify_fail=True), pytest.raises(CreateFailed, match="Session created but not valid in proxy router"):
        immediate(book.create_model_session(KEY, "x", MISTRAL, 3600))
    assert immediate(book.active(KEY)) == first  # the request's close was rolled back in the gateway...
    assert not immediate(book.record(KEY)).open_on_chain(first.session_id)  # ...not on chain
    assert immediate(book.history(KEY)) == ()
    assert immediate(book.ping(KEY)) == PingOutcome(PingKind.DEAD, first.session_id, CHAT_FAILED)


class RetryingStore(InMemoryStore):
    """A store that runs every change twice, as an optimistic (WATCH/MULTI) store does after a conflict."""

    async def transact(self, key: str, change: Change[T], ended: Ended[T] = lambda result: ()) -> T:
        async def discarded(current: KeyRecord) -> tuple[KeyRecord, T]:
            return current, (await change(current))[1]

        await super().transact(key, discarded)
        return await super().transact(key, change, ended)


def _retrying_book(clock: FakeClock, faults: FaultPlan) -> SessionBook:
    store = RetryingStore()
    return SessionBook(store, clock, IdSource(1), SimulatedUpstream(None, clock, faults, ReplyQueue(), BidTable()))


def test_book_draws_an_armed_fault_once_when_a_transaction_is_retried(clock: FakeClock, faults: FaultPlan) -> None:
    book = _retrying_book(clock, faults)
    immediate(faults.arm(FaultKind.CREATE_FAIL, count=2, message="boom"))
    with pytest.raises(CreateFailed, match="boom"):
        immediate(book.create_bid_session(KEY, "0x01", 3600))
    assert [f.remaining for f in faults.list()] == [1]


def test_book_a_retried_transaction_keeps_the_fault_its_first_run_drew(clock: FakeClock, faults: FaultPlan) -> None:
    book = _retrying_book(clock, faults)
    old = _open(book)
    for kind in (FaultKind.CLOSE_FAIL, FaultKind.VERIFY_FAIL):
        immediate(faults.arm(kind, count=1))
    with pytest.raises(CreateFailed, match="not valid in proxy router"):  # the retry saw the drawn verify fault
        immediate(book.create_model_session(KEY, "m", LLAMA, 3600))
    assert faults.list() == ()
    assert immediate(book.active(KEY)) == old  # the row rolled back, and the drawn close fault kept it open on chain
    assert immediate(book.record(KEY)).open_on_chain(old.session_id)
    immediate(faults.arm(FaultKind.PING_DEAD, count=1, message="gone"))
    assert immediate(book.ping(KEY)) == PingOutcome(PingKind.DEAD, old.session_id, "gone")
    assert (immediate(book.active(KEY)), faults.list()) == (None, ())


def test_book_hands_the_client_s_attempt_to_the_upstream(book: SessionBook, faults: FaultPlan) -> None:
    session = _open(book)
    immediate(faults.arm(FaultKind.CLOSE_FAIL, count=1, retries=True))
    first, retry = Attempt("close", idempotency_key="k1"), Attempt("close", retry=True, idempotency_key="k1")
    for attempt in (first, retry):  # the retry of the call the fault broke is broken too, for free
        with pytest.raises(CloseFailed):
            immediate(book.close(KEY, attempt=attempt))
    assert immediate(book.close(KEY, attempt=Attempt("close", idempotency_key="k2"))).session_id == session.session_id


def test_book_r2_other_model_switches(book: SessionBook, clock: FakeClock) -> None:
    first = _open(book)
    immediate(clock.advance(10))
    second = _open(book, LLAMA, 900)
    assert second.session_id != first.session_id
    assert (second.model, second.created_at, second.expires_at) == (LLAMA, T0 + 10, T0 + 910)
    assert immediate(book.active(KEY)) == second
    [ended] = immediate(book.history(KEY))
    assert (ended.session_id, ended.closed_at, ended.close_reason) == (first.session_id, T0 + 10, "switched")


def test_book_r2_model_session_replaces_a_bid_session_even_on_the_same_id(book: SessionBook) -> None:
    bid = immediate(book.create_bid_session(KEY, MISTRAL, 3600))
    model = _open(book, MISTRAL)
    assert model.session_id != bid.session_id
    assert _reasons(book) == [(bid.session_id, "switched")]


def test_book_r6_expired_session_is_replaced_not_reused(book: SessionBook, clock: FakeClock) -> None:
    first = _open(book, duration=300)
    immediate(clock.advance(300.001))
    second = _open(book, duration=300)
    assert second.session_id != first.session_id
    assert _reasons(book) == [(first.session_id, "expired")]


def test_book_r6_session_is_reused_exactly_at_its_expiry(book: SessionBook, clock: FakeClock) -> None:
    first = _open(book, duration=300)
    immediate(clock.set(T0 + 300))
    assert _open(book) == first


@pytest.mark.parametrize(
    ("duration", "expires"), [(0, T0 + 3600), (300, T0 + 300), (86400, T0 + 86400)], ids=["zero-default", "min", "day"]
)
def test_book_durations(book: SessionBook, duration: int, expires: float) -> None:
    assert _open(book, duration=duration).expires_at == expires


def test_book_zero_duration_takes_the_keys_automation_duration(make_book: BookFactory) -> None:
    book = make_book(min_duration=60)
    immediate(book.automation.change(KEY, duration=900))
    assert _open(book, duration=0).expires_at == T0 + 900
    assert _open(book, LLAMA, 60).expires_at == T0 + 60


def test_book_an_automation_duration_shorter_than_the_minimum_fails_like_the_chain(book: SessionBook) -> None:
    immediate(book.automation.change(KEY, duration=100))
    with pytest.raises(CreateFailed, match="SessionTooShort"):
        _open(book, duration=0)


@pytest.mark.parametrize("off", ["for the key", "system-wide"])
def test_book_zero_duration_with_automation_off_is_the_gateways_500_after_the_old_sessions_close(
    book: SessionBook, off: str
) -> None:
    """v1.14.0 (`session_service.py:151-167`): the reuse check and the old session's close come first; then
    the automation check raises, the row is rolled back and the close on chain stays done."""
    old = _open(book)
    if off == "system-wide":
        book.automation.system = False
    else:
        immediate(book.automation.change(KEY, enabled=False))
    assert _open(book, duration=0) == old  # reused: no automation check
    with pytest.raises(CreateFailed) as caught:
        _open(book, LLAMA, duration=0)
    assert caught.value.detail == f"Unexpected error: {AUTOMATION_DISABLED}"
    assert immediate(book.active(KEY)) == old  # still the key's row, dead on chain
    assert immediate(book.record(KEY)).chain == ()
    assert _open(book, LLAMA, 300).expires_at == T0 + 300  # a duration given: no automation check


@pytest.mark.parametrize(
    ("duration", "fail", "verify_fail", "detail"),
    [
        (299, None, False, TOO_SHORT),
        (-1, None, False, TOO_SHORT),
        (3600, "provider unavailable", False, CREATE_FAILED),
        (1, "provider unavailable", False, CREATE_FAILED),
        (3600, None, True, VERIFY),
        (299, None, True, TOO_SHORT),
        (3 * 10**11, None, False, "Unexpected error: date value out of range"),
    ],
    ids=["too-short", "negative", "fault", "fault-beats-too-short", "verify", "too-short-beats-verify", "date"],
)
def test_book_failed_create_on_a_fresh_key_leaves_no_session(
    book: SessionBook, arm: Arm, duration: int, fail: str | None, verify_fail: bool, detail: str
) -> None:
    with arm(fail=fail, verify_fail=verify_fail), pytest.raises(CreateFailed) as caught:
        immediate(book.create_model_session(KEY, "m", MISTRAL, duration))
    assert caught.value.detail == detail
    assert immediate(book.active(KEY)) is None
    assert immediate(book.history()) == ()


@pytest.mark.parametrize(
    ("duration", "fail", "verify_fail"),
    [(10, None, False), (3600, "boom", False), (3600, None, True)],
    ids=["too-short", "fault", "verify"],
)
def test_book_r2_failed_switch_leaves_the_old_session_closed_on_chain_and_active(
    book: SessionBook, arm: Arm, duration: int, fail: str | None, verify_fail: bool
) -> None:
    old = _open(book)
    with arm(fail=fail, verify_fail=verify_fail), pytest.raises(CreateFailed):
        immediate(book.create_model_session(KEY, "m", LLAMA, duration))
    assert immediate(book.active(KEY)) == old
    assert immediate(book.record(KEY)).chain == ()  # the old one closed, a new one (if any) closed by verification
    assert immediate(book.history(KEY)) == ()


def test_book_date_overflow_leaves_an_orphan_on_chain(book: SessionBook) -> None:
    old = _open(book)
    with pytest.raises(CreateFailed, match="date value out of range"):
        immediate(book.create_model_session(KEY, "m", LLAMA, 10**12))
    (orphan,) = immediate(book.record(KEY)).orphans()
    assert (orphan.model, orphan.expires_at) == (LLAMA, T0 + 10**12)
    assert immediate(book.active(KEY)) == old


def test_book_a_switch_whose_close_fails_leaves_the_old_one_open_on_chain(book: SessionBook, arm: Arm) -> None:
    old = _open(book)
    with arm(close_fail=True):
        new = immediate(book.create_model_session(KEY, "m", LLAMA, 3600))
    assert immediate(book.record(KEY)).orphans() == (old,)
    assert _reasons(book) == [(old.session_id, "switched")]
    assert immediate(book.active(KEY)) == new


def test_book_r3_bid_session_deactivates_the_old_one(book: SessionBook, clock: FakeClock) -> None:
    old = _open(book)
    immediate(clock.advance(5))
    bid = immediate(book.create_bid_session(KEY, BID, 3600))
    assert bid == Session(bid.session_id, KEY, SessionKind.BID, BID, BID, T0 + 5, T0 + 3605)
    assert immediate(book.active(KEY)) == bid
    assert _reasons(book) == [(old.session_id, "deactivated")]


def test_book_a_zero_duration_bid_reaches_the_chain_as_0_which_refuses_it(book: SessionBook) -> None:
    """bidsession has no automation branch (`session/index.py:203` at v1.14.0): 0 is sent as given."""
    old = _open(book)
    with pytest.raises(CreateFailed) as caught:
        immediate(book.create_bid_session(KEY, BID, 0))
    assert caught.value.detail == BID_TOO_SHORT
    assert immediate(book.active(KEY)) == old


def test_book_r3_bid_session_never_reuses(book: SessionBook) -> None:
    first = immediate(book.create_bid_session(KEY, BID, 600))
    second = immediate(book.create_bid_session(KEY, BID, 600))
    assert first.session_id != second.session_id
    assert _reasons(book) == [(first.session_id, "deactivated")]


def test_book_r3_r6_expired_session_ends_as_expired_on_bid(book: SessionBook, clock: FakeClock) -> None:
    old = _open(book, duration=300)
    immediate(clock.advance(301))
    immediate(book.create_bid_session(KEY, BID, 600))
    assert _reasons(book) == [(old.session_id, "expired")]


@pytest.mark.parametrize(
    ("duration", "fail", "detail"),
    [
        (3600, "provider unavailable", BID_FAILED),
        (299, None, BID_TOO_SHORT),
        (2**63, None, "HTTP 400"),
        (3 * 10**11, None, "Unexpected error: date value out of range"),
    ],
    ids=["fault", "too-short", "int64", "date-overflow"],
)
def test_book_r3_failed_bid_session_undoes_its_deactivation(
    book: SessionBook, arm: Arm, duration: int, fail: str | None, detail: str
) -> None:
    old = _open(book)
    with arm(fail=fail), pytest.raises(CreateFailed) as caught:
        immediate(book.create_bid_session(KEY, BID, duration))
    assert detail in caught.value.detail
    assert "Failed to create session" not in caught.value.detail
    assert immediate(book.active(KEY)) == old
    assert immediate(book.history()) == ()


def test_book_r3_a_bid_that_meets_another_committed_row_fails_unique(book: SessionBook) -> None:
    first, second = immediate(book.begin_bid(KEY, BID, 600)), immediate(book.begin_bid(KEY, BID, 600))
    winner = immediate(book.finish_bid(first))
    with pytest.raises(CreateFailed, match="sessions_active_api_key_unique") as caught:
        immediate(book.finish_bid(second))
    assert f"'{BID}', 'bid', datetime.datetime(2026, 1, 1, 0, 0), datetime.datetime(2026, 1, 1, 0, 10)" in str(
        caught.value
    )
    assert immediate(book.active(KEY)) == winner
    assert len(immediate(book.record(KEY)).orphans()) == 1


def test_book_keeps_a_bounded_chain_and_always_the_gateways_row(book: SessionBook) -> None:
    pending = [immediate(book.begin_bid(KEY, BID, 600)) for _ in range(CHAIN_LIMIT + 6)]
    winner = immediate(book.finish_bid(pending[0]))
    for loser in pending[1:]:
        with pytest.raises(CreateFailed, match="UniqueViolationError"):
            immediate(book.finish_bid(loser))
    chain = immediate(book.record(KEY)).chain
    assert (len(chain), chain[0], len(immediate(book.record(KEY)).orphans())) == (CHAIN_LIMIT, winner, CHAIN_LIMIT - 1)
    assert chain[-1].session_id not in {s.session_id for s in chain[:-1]}


def test_book_r5_a_dead_ping_whose_close_fails_keeps_the_session(book: SessionBook, arm: Arm) -> None:
    session = _open(book)
    with arm(dead="gone", close_fail=True):
        assert immediate(book.ping(KEY)) == PingOutcome(PingKind.DEAD, session.session_id, "gone")
    assert immediate(book.active(KEY)) == session
    assert immediate(book.ping(KEY)) == PingOutcome(PingKind.ALIVE, session.session_id)


def test_book_r4_close_without_session(book: SessionBook, arm: Arm) -> None:
    assert immediate(book.close(KEY)) == CloseOutcome(CloseKind.NONE, None)
    with arm(close_fail=True):
        assert immediate(book.close(KEY)) == CloseOutcome(CloseKind.NONE, None)


@pytest.mark.parametrize("fail", [False, True], ids=["plain", "fault-ignored"])
def test_book_r4_r6_close_expired_marks_it_inactive(book: SessionBook, arm: Arm, clock: FakeClock, fail: bool) -> None:
    session = _open(book, duration=300)
    immediate(clock.advance(300.001))
    with arm(close_fail=fail):
        assert immediate(book.close(KEY)) == CloseOutcome(CloseKind.EXPIRED, session.session_id)
    assert immediate(book.active(KEY)) is None
    assert _reasons(book) == [(session.session_id, "expired")]


def test_book_r4_close_closes(book: SessionBook, clock: FakeClock) -> None:
    session = _open(book)
    immediate(clock.advance(3600))
    assert immediate(book.close(KEY)) == CloseOutcome(CloseKind.CLOSED, session.session_id)
    assert immediate(book.active(KEY)) is None
    assert immediate(book.history(KEY))[0].closed_at == T0 + 3600
    assert _reasons(book) == [(session.session_id, "closed")]
    assert immediate(book.close(KEY)) == CloseOutcome(CloseKind.NONE, None)


def test_book_r4_close_fault_leaves_the_session_active(book: SessionBook, arm: Arm) -> None:
    session = _open(book)
    with arm(close_fail=True), pytest.raises(CloseFailed) as caught:
        immediate(book.close(KEY))
    assert caught.value.detail == "Error closing session: 500: Failed to close session"
    assert immediate(book.active(KEY)) == session
    assert immediate(book.history()) == ()


def test_book_r5_ping_without_session(book: SessionBook, arm: Arm) -> None:
    assert immediate(book.ping(KEY)) == PingOutcome(PingKind.NO_SESSION, None)
    with arm(dead="gone"):
        assert immediate(book.ping(KEY)) == PingOutcome(PingKind.NO_SESSION, None)


def test_book_r5_ping_alive(book: SessionBook) -> None:
    session = _open(book)
    assert immediate(book.ping(KEY)) == PingOutcome(PingKind.ALIVE, session.session_id)
    assert immediate(book.active(KEY)) == session


@pytest.mark.parametrize("dead", [None, "gone"], ids=["plain", "dead-ignored"])
def test_book_r5_r6_ping_expired_marks_it_inactive(
    book: SessionBook, arm: Arm, clock: FakeClock, dead: str | None
) -> None:
    session = _open(book, duration=300)
    immediate(clock.advance(301))
    with arm(dead=dead):
        assert immediate(book.ping(KEY)) == PingOutcome(PingKind.EXPIRED, session.session_id)
    assert immediate(book.active(KEY)) is None
    assert _reasons(book) == [(session.session_id, "expired")]


def test_book_r5_ping_dead_closes_it(book: SessionBook, arm: Arm) -> None:
    session = _open(book)
    with arm(dead="No response received from chat completion"):
        assert immediate(book.ping(KEY)) == PingOutcome(
            PingKind.DEAD, session.session_id, "No response received from chat completion"
        )
    assert immediate(book.active(KEY)) is None
    assert _reasons(book) == [(session.session_id, "dead")]


@pytest.mark.parametrize("state", ["none", "alive", "expired"])
def test_book_r5_ping_error_wins_and_changes_nothing(book: SessionBook, arm: Arm, clock: FakeClock, state: str) -> None:
    session = None if state == "none" else _open(book, duration=300)
    immediate(clock.advance(301 if state == "expired" else 1))
    with arm(dead="gone", error="database is locked"):
        outcome = immediate(book.ping(KEY))
    assert outcome == PingOutcome(PingKind.ERROR, None, "database is locked")
    assert immediate(book.active(KEY)) == session
    assert immediate(book.history()) == ()


def test_book_r7_keys_never_interfere(book: SessionBook, arm: Arm, clock: FakeClock) -> None:
    other = _open(book, key=OTHER_KEY)
    _open(book)
    _open(book, LLAMA)
    immediate(book.create_bid_session(KEY, BID, 600))
    with arm(dead="gone"):
        immediate(book.ping(KEY))
    immediate(book.close(KEY))
    assert immediate(book.active(OTHER_KEY)) == other
    assert immediate(book.history(OTHER_KEY)) == ()
    immediate(clock.advance(3601))
    immediate(book.close(KEY))
    assert immediate(book.active(OTHER_KEY)) == other  # lazy expiry (R6) only touches the key in question
    immediate(book.reset(KEY))
    assert immediate(book.active(OTHER_KEY)) == other


def test_book_r7_same_model_on_two_keys_gives_two_sessions(book: SessionBook) -> None:
    assert _open(book).session_id != _open(book, key=OTHER_KEY).session_id


def test_book_tells_a_chat_what_the_chain_says_of_the_session_it_names(book: SessionBook, arm: Arm) -> None:
    mine, other = _open(book), _open(book, key=OTHER_KEY)
    assert immediate(book.chain_error(KEY, mine.session_id)) is None  # open on the key's own chain
    assert (
        immediate(book.chain_error(KEY, other.session_id)) is None
    )  # open on another key's chain (C5: any session id)
    assert immediate(book.chain_error(KEY, "0xunknown")) == "session not found"
    _open(book, LLAMA)  # the switch closes `mine`: it joins the history
    assert immediate(book.chain_error(OTHER_KEY, mine.session_id)) == "session expired"


def test_book_an_active_row_the_chain_closed_is_an_expired_session_to_a_chat(book: SessionBook, arm: Arm) -> None:
    first = _open(book)
    with arm(verify_fail=True), pytest.raises(CreateFailed):
        immediate(book.create_model_session(KEY, "x", MISTRAL, 3600))  # the row stays, the chain closed it
    assert immediate(book.chain_error(KEY, first.session_id)) == "session expired"


def test_book_r6_active_is_an_admin_view_that_does_not_expire_before_the_sync(
    make_book: BookFactory, clock: FakeClock
) -> None:
    book = make_book(sync_interval=0)
    session = _open(book, duration=300)
    immediate(clock.advance(1000))
    assert immediate(book.active(KEY)) == session
    assert immediate(book.prefixes()) == (KEY,)


def test_book_the_sync_pass_closes_expired_rows_on_chain(book: SessionBook, clock: FakeClock) -> None:
    session = _open(book, duration=300)
    immediate(clock.advance(360))  # a pass ran at T0 + 360
    assert immediate(book.active(KEY)) is None
    assert immediate(book.record(KEY)).chain == ()
    assert _reasons(book) == [(session.session_id, "expired")]


def test_book_the_sync_pass_retires_rows_the_chain_closed(book: SessionBook, clock: FakeClock) -> None:
    old = _open(book)
    with pytest.raises(CreateFailed):
        immediate(book.create_model_session(KEY, "m", LLAMA, 10))
    assert immediate(book.sync()) == 1
    assert immediate(book.sync(KEY)) == 0
    assert immediate(book.active(KEY)) is None
    assert _reasons(book) == [(old.session_id, "chain_closed")]


def test_book_state_of_a_key_without_session(book: SessionBook) -> None:
    assert immediate(book.record(KEY)).empty
    assert immediate(book.prefixes()) == ()


def test_book_reset_forgets_state_and_history(book: SessionBook) -> None:
    _open(book)
    _open(book, LLAMA)
    _open(book, key=OTHER_KEY)
    immediate(book.reset())
    assert (immediate(book.prefixes()), immediate(book.history())) == ((), ())


def test_book_history_limit(book: SessionBook) -> None:
    for model in (MISTRAL, LLAMA, MISTRAL):
        _open(book, model)
    assert [s.model for s in immediate(book.history(KEY, limit=1))] == [LLAMA]
    assert len(immediate(book.history())) == 2


def test_book_ids_are_reproducible_under_a_seed(clock: FakeClock) -> None:
    def run() -> list[str]:
        upstream = SimulatedUpstream(None, clock, FaultPlan(clock=clock), ReplyQueue(), BidTable())
        book = SessionBook(InMemoryStore(), clock, IdSource(7), upstream)
        return [_open(book, model).session_id for model in (MISTRAL, LLAMA, MISTRAL)]

    assert run() == run()
    assert len(set(run())) == 3
