"""The in-memory session store: atomic per-key transactions and a bounded history."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mockserver.domain import EndReason, InMemoryStore, KeyRecord, Session, SessionKind, SessionStore
from mockserver.domain.store import EMPTY
from tests.domain.conftest import KEY, MISTRAL, OTHER_KEY, T0


def _session(number: int, key: str = KEY) -> Session:
    return Session(f"0x{number:064x}", key, SessionKind.MODEL, MISTRAL, "m", T0, T0 + 3600)


def _ended(number: int, key: str = KEY) -> Session:
    return _session(number, key).ended(T0 + number, EndReason.CLOSED)


def _put(store: InMemoryStore, session: Session) -> None:
    store.transact(session.key, lambda _: (KeyRecord(session), None))


def test_store_in_memory_store_is_a_session_store() -> None:
    store: SessionStore = InMemoryStore()
    assert store.active(KEY) is None


def test_store_transact_stores_the_new_session_and_returns_the_rest() -> None:
    store = InMemoryStore()
    seen: list[Session | None] = []

    def change(current: KeyRecord) -> tuple[KeyRecord, str]:
        seen.append(current.active)
        return KeyRecord(_session(1)), "opened"

    assert store.transact(KEY, change) == "opened"
    assert store.transact(KEY, change) == "opened"
    assert seen == [None, _session(1)]
    assert store.active(KEY) == _session(1)
    assert store.keys() == (KEY,)


def test_store_transact_none_removes_the_key() -> None:
    store = InMemoryStore()
    store.transact(KEY, lambda _: (KeyRecord(_session(1)), None))
    assert store.transact(KEY, lambda current: (EMPTY, current.active)) == _session(1)
    assert store.active(KEY) is None
    assert store.keys() == ()
    assert store.transact(KEY, lambda current: (EMPTY, current.active)) is None
    assert store.record(KEY) == EMPTY


def test_store_transact_that_raises_changes_nothing() -> None:
    store = InMemoryStore()
    store.transact(KEY, lambda _: (KeyRecord(_session(1)), None))

    def broken(current: KeyRecord) -> tuple[KeyRecord, None]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.transact(KEY, broken)
    assert store.active(KEY) == _session(1)
    store.transact(KEY, lambda _: (KeyRecord(_session(2)), None))  # the lock was released
    assert store.active(KEY) == _session(2)


def test_store_r7_keys_are_separate() -> None:
    store = InMemoryStore()
    store.transact(KEY, lambda _: (KeyRecord(_session(1)), None))
    store.transact(OTHER_KEY, lambda _: (KeyRecord(_session(2, OTHER_KEY)), None))
    store.transact(KEY, lambda _: (EMPTY, None))
    assert store.active(OTHER_KEY) == _session(2, OTHER_KEY)
    assert store.keys() == (OTHER_KEY,)


def test_store_history_is_newest_first_filtered_and_limited() -> None:
    store = InMemoryStore()
    for number in range(1, 5):
        store.record_ended(_ended(number, KEY if number % 2 else OTHER_KEY))
    assert [s.closed_at for s in store.history()] == [T0 + 4, T0 + 3, T0 + 2, T0 + 1]
    assert store.history(KEY) == (_ended(3), _ended(1))
    assert store.history(limit=1) == (_ended(4, OTHER_KEY),)
    assert store.history(OTHER_KEY, limit=0) == ()


def test_store_history_is_bounded() -> None:
    store = InMemoryStore(history_limit=2)
    for number in range(1, 4):
        store.record_ended(_ended(number))
    assert store.history() == (_ended(3), _ended(2))
    assert repr(store) == "InMemoryStore(0 keys, 2 ended)"


def test_store_reset_one_key_keeps_the_others() -> None:
    store = InMemoryStore(history_limit=3)
    for key in (KEY, OTHER_KEY):
        _put(store, _session(9, key))
        store.record_ended(_ended(1, key))
    store.reset(KEY)
    assert store.active(KEY) is None
    assert store.history() == (_ended(1, OTHER_KEY),)
    assert store.keys() == (OTHER_KEY,)
    for number in range(2, 5):
        store.record_ended(_ended(number))
    assert len(store.history()) == 3  # the bound survives a reset


def test_store_reset_everything() -> None:
    store = InMemoryStore()
    store.transact(KEY, lambda _: (KeyRecord(_session(1)), None))
    store.record_ended(replace(_ended(2), key=OTHER_KEY))
    store.reset()
    assert (store.keys(), store.history()) == ((), ())
