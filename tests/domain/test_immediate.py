"""`immediate`: a domain coroutine that never waits runs to its end without an event loop; one that waits is refused."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from mockserver.domain import InMemoryStore, KeyRecord, NotImmediate, immediate
from tests.domain.conftest import KEY


async def _answer() -> int:
    return 42


async def _broken() -> int:
    raise ValueError("boom")


async def _waiting() -> int:
    await asyncio.sleep(0)  # yields to an event loop: what a shared store's round trip does
    return 1


def test_immediate_returns_what_the_coroutine_returns() -> None:
    assert immediate(_answer()) == 42


def test_immediate_lets_the_coroutines_error_through() -> None:
    with pytest.raises(ValueError, match="boom"):
        immediate(_broken())


def test_immediate_refuses_a_coroutine_that_waits_and_closes_it() -> None:
    waiting = _waiting()
    with pytest.raises(NotImmediate, match="_waiting waits for the shared store: await it on the event loop"):
        immediate(waiting)
    assert (
        inspect.getcoroutinestate(waiting) == inspect.CORO_CLOSED
    )  # closed: no "never awaited" warning, nothing left half run


def test_the_in_memory_store_refuses_a_change_that_waits_and_keeps_the_record() -> None:
    store = InMemoryStore()

    async def waiting(current: KeyRecord) -> tuple[KeyRecord, None]:
        await asyncio.sleep(0)
        return current, None

    with pytest.raises(NotImmediate):
        immediate(store.transact(KEY, waiting))
    assert immediate(store.record(KEY)).empty
    assert immediate(store.keys()) == ()  # and the lock was released
