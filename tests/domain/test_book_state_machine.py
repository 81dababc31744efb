"""The session book against a tiny dict model of R1-R7, over Hypothesis-generated sequences."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from mockserver.domain import (
    BidTable,
    CloseFailed,
    CloseKind,
    CloseOutcome,
    CreateFailed,
    FakeClock,
    FaultPlan,
    IdSource,
    InMemoryStore,
    PingKind,
    PingOutcome,
    ReplyQueue,
    Session,
    SessionBook,
    SessionKind,
    SimulatedUpstream,
    immediate,
)
from mockserver.domain.upstream import CHAT_FAILED
from tests.domain.conftest import BID, KEY, LLAMA, MISTRAL, OTHER_KEY, armed

KEYS = st.sampled_from([KEY, OTHER_KEY])
MODELS = st.sampled_from([MISTRAL, LLAMA])
BIDS = st.sampled_from([BID, MISTRAL])  # a bid id equal to a model id must still not be reused (R1)
DURATIONS = st.sampled_from([0, 300, 600, 3600, 299, 1, -5])
STEPS = st.sampled_from([0.0, 0.001, 1.0, 299.0, 300.0, 600.0, 3600.0])


@dataclass(frozen=True)
class Expected:
    session_id: str
    kind: SessionKind
    model: str
    expires_at: float


class BookMachine(RuleBasedStateMachine):
    """Each rule predicts the outcome from the dict model (the gateway row and the chain), then checks the book.

    A failed create rolls the row back and keeps what it did on chain (observed-v1.14.0.md section 0);
    the background sync is off here (tests/domain/test_book.py covers it).
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        store = InMemoryStore(history_limit=100_000)
        self.faults = FaultPlan(clock=self.clock)
        upstream = SimulatedUpstream(None, self.clock, self.faults, ReplyQueue(), BidTable())
        self.book = SessionBook(store, self.clock, IdSource(0), upstream, sync_interval=0)
        self.active: dict[str, Expected] = {}
        self.open: set[str] = set()  # session ids open on chain
        self.ended = {KEY: 0, OTHER_KEY: 0}
        self.seen: set[str] = set()

    def _alive(self, key: str) -> Expected | None:
        current = self.active.get(key)
        return current if current is not None and self.clock.now() <= current.expires_at else None

    def _end(self, key: str) -> None:
        if self.active.pop(key, None) is not None:
            self.ended[key] += 1

    def _opened(self, key: str, session: Session, kind: SessionKind, model: str, duration: int) -> None:
        assert session.session_id not in self.seen
        self.seen.add(session.session_id)
        self.open.add(session.session_id)
        self._end(key)
        self.active[key] = Expected(session.session_id, kind, model, self.clock.now() + (duration or 3600))

    def _create_model(self, key: str, model: str, duration: int, fail: bool, verify: bool) -> Session:
        with armed(self.faults, fail="boom" if fail else None, verify_fail=verify):
            return immediate(self.book.create_model_session(key, "as sent", model, duration))

    @rule(key=KEYS, model=MODELS, duration=DURATIONS, fail=st.booleans(), verify=st.booleans())
    def create_model(self, key: str, model: str, duration: int, fail: bool, verify: bool) -> None:
        alive = self._alive(key)
        if alive is not None and alive.kind is SessionKind.MODEL and alive.model == model:
            if not verify and alive.session_id in self.open:
                assert self._create_model(key, model, duration, fail, verify).session_id == alive.session_id  # R1
                return
            with pytest.raises(CreateFailed):  # the gateway verifies a reused session too
                self._create_model(key, model, duration, fail, verify)
            self.open.discard(alive.session_id)  # closed on chain; the row is rolled back
            return
        if alive is not None:
            self.open.discard(alive.session_id)  # R2: the switch closes the old one on chain
        if not fail and (duration or 3600) >= 300 and not verify:
            self._opened(
                key, self._create_model(key, model, duration, fail, verify), SessionKind.MODEL, model, duration
            )
            return
        with pytest.raises(CreateFailed):  # the row stays (R6: an expired one stays expired)
            self._create_model(key, model, duration, fail, verify)

    @rule(key=KEYS, bid=BIDS, duration=DURATIONS, fail=st.booleans())
    def create_bid(self, key: str, bid: str, duration: int, fail: bool) -> None:
        if fail or duration < 300:  # a bid sends 0 as given: the chain refuses it
            with armed(self.faults, fail="boom" if fail else None), pytest.raises(CreateFailed):  # R3: rolled back
                immediate(self.book.create_bid_session(key, bid, duration))
        else:
            self._opened(
                key, immediate(self.book.create_bid_session(key, bid, duration)), SessionKind.BID, bid, duration
            )

    @rule(key=KEYS, fail=st.booleans())
    def close(self, key: str, fail: bool) -> None:
        current, alive = self.active.get(key), self._alive(key)
        if alive is not None and fail:
            with armed(self.faults, close_fail=True), pytest.raises(CloseFailed):
                immediate(self.book.close(key))
            return
        kind = CloseKind.NONE if current is None else CloseKind.CLOSED if alive else CloseKind.EXPIRED
        expected = CloseOutcome(kind, None if current is None else current.session_id)
        with armed(self.faults, close_fail=fail):
            assert immediate(self.book.close(key)) == expected  # R4
        if alive is not None:
            self.open.discard(alive.session_id)
        self._end(key)

    @rule(key=KEYS, dead=st.booleans(), error=st.booleans())
    def ping(self, key: str, dead: bool, error: bool) -> None:
        with armed(self.faults, dead="gone" if dead else None, error="locked" if error else None):
            outcome = immediate(self.book.ping(key))
        current, alive = self.active.get(key), self._alive(key)
        if error:
            assert outcome == PingOutcome(PingKind.ERROR, None, "locked")
            return
        if current is None:
            assert outcome == PingOutcome(PingKind.NO_SESSION, None)
            return
        closed = current.session_id not in self.open
        kind = PingKind.EXPIRED if alive is None else PingKind.DEAD if dead or closed else PingKind.ALIVE
        text = (CHAT_FAILED if closed else "gone") if kind is PingKind.DEAD else None
        assert outcome == PingOutcome(kind, current.session_id, text)  # R5
        if kind is not PingKind.ALIVE:
            self.open.discard(current.session_id) if kind is PingKind.DEAD else None
            self._end(key)

    @rule(seconds=STEPS)
    def advance(self, seconds: float) -> None:
        immediate(self.clock.advance(seconds))

    @rule(key=st.none() | KEYS)
    def reset(self, key: str | None) -> None:
        immediate(self.book.reset(key))
        for reset_key in self.ended if key is None else [key]:
            self.active.pop(reset_key, None)
            self.ended[reset_key] = 0

    @invariant()
    def book_matches_model(self) -> None:
        for key, ended in self.ended.items():
            session = immediate(self.book.active(key))
            stored = (
                None
                if session is None
                else Expected(session.session_id, session.kind, session.model, session.expires_at)
            )
            assert stored == self.active.get(key)  # R7: each key only moves by its own operations
            assert len(immediate(self.book.history(key))) == ended


def test_book_matches_a_dict_model_of_r1_to_r7() -> None:
    run_state_machine_as_test(
        BookMachine,
        settings=settings(derandomize=True, database=None, max_examples=150, stateful_step_count=40, deadline=None),
    )
