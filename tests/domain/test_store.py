"""The in-memory session store: atomic per-key transactions and a bounded history."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mockserver.domain import (
    EndReason,
    InMemoryStore,
    KeyRecord,
    Session,
    SessionKind,
    SessionStore,
    immediate,
)
from mockserver.domain.store import EMPTY, Change
from tests.domain.conftest import KEY, MISTRAL, OTHER_KEY, T0


def _session(number: int, key: str = KEY) -> Session:
    return Session(f"0x{number:064x}", key, SessionKind.MODEL, MISTRAL, "m", T0, T0 + 3600)


def _ended(number: int, key: str = KEY) -> Session:
    return _session(number, key).ended(T0 + number, EndReason.CLOSED)


def _storing(record: KeyRecord) -> Change[None]:
    """A change that stores `record` whatever the key held."""

    async def change(_: KeyRecord) -> tuple[KeyRecord, None]:
        return record, None

    return change


async def _emptying(current: KeyRecord) -> tuple[KeyRecord, Session | None]:
    return EMPTY, current.active


async def _keeping(current: KeyRecord) -> tuple[KeyRecord, None]:
    return current, None


def _put(store: InMemoryStore, session: Session) -> None:
    immediate(store.transact(session.key, _storing(KeyRecord(session))))


def _end(store: InMemoryStore, session: Session) -> None:
    """Add an ended session to the history the way the book does: named by a transaction's `ended`."""
    immediate(store.transact(session.key, _keeping, lambda _: (session,)))


def _active(store: SessionStore, key: str) -> Session | None:
    return immediate(store.record(key)).active


def test_store_in_memory_store_is_a_session_store() -> None:
    store: SessionStore = InMemoryStore()
    assert _active(store, KEY) is None


def test_store_transact_stores_the_new_session_and_returns_the_rest() -> None:
    store = InMemoryStore()
    seen: list[Session | None] = []

    async def change(current: KeyRecord) -> tuple[KeyRecord, str]:
        seen.append(current.active)
        return KeyRecord(_session(1)), "opened"

    assert immediate(store.transact(KEY, change)) == "opened"
    assert immediate(store.transact(KEY, change)) == "opened"
    assert seen == [None, _session(1)]
    assert _active(store, KEY) == _session(1)
    assert immediate(store.keys()) == (KEY,)


def test_store_transact_none_removes_the_key() -> None:
    store = InMemoryStore()
    _put(store, _session(1))
    assert immediate(store.transact(KEY, _emptying)) == _session(1)
    assert _active(store, KEY) is None
    assert immediate(store.keys()) == ()
    assert immediate(store.transact(KEY, _emptying)) is None
    assert immediate(store.record(KEY)) == EMPTY


def test_store_transact_that_raises_changes_nothing() -> None:
    store = InMemoryStore()
    _put(store, _session(1))

    async def broken(current: KeyRecord) -> tuple[KeyRecord, None]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        immediate(store.transact(KEY, broken))
    assert _active(store, KEY) == _session(1)
    _put(store, _session(2))  # the lock was released
    assert _active(store, KEY) == _session(2)


def test_store_r7_keys_are_separate() -> None:
    store = InMemoryStore()
    _put(store, _session(1))
    _put(store, _session(2, OTHER_KEY))
    immediate(store.transact(KEY, _storing(EMPTY)))
    assert _active(store, OTHER_KEY) == _session(2, OTHER_KEY)
    assert immediate(store.keys()) == (OTHER_KEY,)


def test_store_history_is_newest_first_filtered_and_limited() -> None:
    store = InMemoryStore()
    for number in range(1, 5):
        _end(store, _ended(number, KEY if number % 2 else OTHER_KEY))
    assert [s.closed_at for s in immediate(store.history())] == [T0 + 4, T0 + 3, T0 + 2, T0 + 1]
    assert immediate(store.history(KEY)) == (_ended(3), _ended(1))
    assert immediate(store.history(limit=1)) == (_ended(4, OTHER_KEY),)
    assert immediate(store.history(OTHER_KEY, limit=0)) == ()


def test_store_history_is_bounded() -> None:
    store = InMemoryStore(history_limit=2)
    for number in range(1, 4):
        _end(store, _ended(number))
    assert immediate(store.history()) == (_ended(3), _ended(2))
    assert repr(store) == "InMemoryStore(0 keys, 2 ended)"


def test_store_reset_one_key_keeps_the_others() -> None:
    store = InMemoryStore(history_limit=3)
    for key in (KEY, OTHER_KEY):
        _put(store, _session(9, key))
        _end(store, _ended(1, key))
    immediate(store.reset(KEY))
    assert _active(store, KEY) is None
    assert immediate(store.history()) == (_ended(1, OTHER_KEY),)
    assert immediate(store.keys()) == (OTHER_KEY,)
    for number in range(2, 5):
        _end(store, _ended(number))
    assert len(immediate(store.history())) == 3  # the bound survives a reset


def test_store_reset_everything() -> None:
    store = InMemoryStore()
    _put(store, _session(1))
    _end(store, replace(_ended(2), key=OTHER_KEY))
    immediate(store.reset())
    assert (immediate(store.keys()), immediate(store.history())) == ((), ())
