"""Factories shared by the domain tests: a fake clock, seeded ids and a session book."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from mockserver.domain import (
    BidTable,
    FakeClock,
    FaultKind,
    FaultPlan,
    IdSource,
    InMemoryStore,
    ReplyQueue,
    SessionBook,
    SimulatedUpstream,
    immediate,
)

KEY = "sk-AbC123"
OTHER_KEY = "sk-XyZ789"
MISTRAL = "0x8e5c0a7b3f9d2e1c6a4b8f0d3e7c9a1b5f2d6e0c4a8b3f7d1e9c5a2b6f0d4e8c"
LLAMA = "0x2f6d1e9c5a2b6f0d4e8c8e5c0a7b3f9d2e1c6a4b8f0d3e7c9a1b5f2d6e0c4a8b"
BID = "0x" + "b1d" * 21 + "0"
FULL_KEY = KEY + "." + "0123456789abcdef" * 4
T0 = 1_767_225_600.0

BookFactory = Callable[..., SessionBook]
Arm = Callable[..., AbstractContextManager[FaultPlan]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def faults(clock: FakeClock) -> FaultPlan:
    return FaultPlan(clock=clock)


@pytest.fixture
def make_book(clock: FakeClock, store: InMemoryStore, faults: FaultPlan) -> BookFactory:
    def make(**options: Any) -> SessionBook:  # SessionBook's keyword options (ints, floats, settings)
        upstream = SimulatedUpstream(None, clock, faults, ReplyQueue(), BidTable())
        return SessionBook(store, clock, IdSource(7), upstream, **options)

    return make


@contextmanager
def armed(
    faults: FaultPlan,
    *,
    fail: str | None = None,
    verify_fail: bool = False,
    close_fail: bool = False,
    dead: str | None = None,
    error: str | None = None,
) -> Iterator[FaultPlan]:
    """Faults armed once each for the calls inside the block (the proxy-router's answers to one request),
    disarmed after it whether the calls used them or not."""
    wanted = (
        (FaultKind.CREATE_FAIL, fail, fail),
        (FaultKind.VERIFY_FAIL, verify_fail, None),
        (FaultKind.CLOSE_FAIL, close_fail, None),
        (FaultKind.PING_DEAD, dead, dead),
        (FaultKind.PING_ERROR, error, error),
    )
    for kind, wanted_now, message in wanted:
        if wanted_now:
            immediate(faults.arm(kind, count=1, message=message))
    try:
        yield faults
    finally:
        immediate(faults.clear())


@pytest.fixture
def arm(faults: FaultPlan) -> Arm:
    """`with arm(fail=..., verify_fail=..., close_fail=..., dead=..., error=...):` around one book call."""

    return functools.partial(armed, faults)


@pytest.fixture
def book(make_book: BookFactory) -> SessionBook:
    return make_book()
