"""R8: any interleaving of operations on one key leaves at most one active session."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator

import pytest

from mockserver.domain import (
    Attempt,
    BidTable,
    CloseFailed,
    CreateFailed,
    DomainError,
    FakeClock,
    FaultPlan,
    IdSource,
    InMemoryStore,
    Opening,
    ReplyQueue,
    SessionBook,
    SessionKind,
    SimulatedUpstream,
    immediate,
    upstream_failure,
)
from tests.domain.conftest import BID, KEY, LLAMA, MISTRAL, OTHER_KEY

THREADS = 8
OPERATIONS = 200


@pytest.fixture
def tight_switching() -> Iterator[None]:
    """Make the interpreter switch threads very often, so that interleavings actually happen."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def _worker(book: SessionBook, seed: int, opened: list[str], errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    try:
        for _ in range(OPERATIONS):
            _one_operation(book, rng, opened)
    except BaseException as exc:
        errors.append(exc)


class CoinUpstream(SimulatedUpstream):
    """A proxy-router whose bid opens fail 20% of the time, closes 30% and test chats half the time."""

    def __init__(self, clock: FakeClock, seed: int) -> None:
        super().__init__(None, clock, FaultPlan(clock=clock), ReplyQueue(), BidTable())
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def _heads(self, chance: float) -> bool:
        with self.lock:
            return self.rng.random() < chance

    async def open_session(self, key: str, opening: Opening, attempt: Attempt) -> DomainError | None:
        failed = opening.kind is SessionKind.BID and self._heads(0.2)
        return upstream_failure(opening.kind, 500, "boom") if failed else None

    async def close_session(self, key: str, session_id: str, attempt: Attempt) -> bool:
        return not self._heads(0.3)

    async def ping_session(self, key: str, session_id: str, attempt: Attempt) -> str | None:
        return "gone" if self._heads(0.5) else None


def _untroubled(clock: FakeClock) -> SimulatedUpstream:
    """The proxy-router with no faults armed: it opens, verifies and closes."""
    return SimulatedUpstream(None, clock, FaultPlan(clock=clock), ReplyQueue(), BidTable())


def _one_operation(book: SessionBook, rng: random.Random, opened: list[str]) -> None:
    choice = rng.randrange(6)
    try:
        if choice < 3:
            opened.append(immediate(book.create_model_session(KEY, "m", (MISTRAL, LLAMA)[choice % 2], 3600)).session_id)
        elif choice == 3:
            opened.append(immediate(book.create_bid_session(KEY, BID, 600)).session_id)
        elif choice == 4:
            immediate(book.close(KEY))
        else:
            immediate(book.ping(KEY))
    except (CreateFailed, CloseFailed):
        pass


@pytest.mark.usefixtures("tight_switching")
def test_book_r8_threads_on_one_key_leave_at_most_one_active_session() -> None:
    store, clock = InMemoryStore(history_limit=THREADS * OPERATIONS), FakeClock()
    book = SessionBook(store, clock, IdSource(1), CoinUpstream(clock, 1))
    other = immediate(book.create_model_session(OTHER_KEY, "m", MISTRAL, 3600))
    opened: list[str] = []
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_worker, args=(book, n, opened, errors)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    active = immediate(book.active(KEY))
    ended = [s.session_id for s in immediate(book.history(KEY))]
    assert len(ended) == len(set(ended)), "a session ended twice"
    accounted = set(ended) | ({active.session_id} if active else set())
    assert accounted == set(opened), "every session handed out is active or ended, and nothing else"
    assert active is None or active.session_id not in ended
    assert set(immediate(store.keys())) <= {KEY, OTHER_KEY}
    assert immediate(book.active(OTHER_KEY)) == other  # R7 under load too
    assert len(opened) > THREADS * OPERATIONS // 4


@pytest.mark.usefixtures("tight_switching")
def test_book_r8_concurrent_same_model_requests_share_one_session() -> None:
    clock = FakeClock()
    book = SessionBook(InMemoryStore(), clock, IdSource(2), _untroubled(clock))
    barrier = threading.Barrier(THREADS)
    ids: list[str] = []

    def request() -> None:
        barrier.wait()
        ids.extend(immediate(book.create_model_session(KEY, "m", MISTRAL, 3600)).session_id for _ in range(50))

    threads = [threading.Thread(target=request) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    active = immediate(book.active(KEY))
    assert active is not None
    assert len(ids) == THREADS * 50
    assert set(ids) == {active.session_id}
    assert immediate(book.history()) == ()
