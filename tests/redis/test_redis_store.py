"""RedisStore keeps the SessionStore contract, atomically per key across threads (R8); RedisClock is shared."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from mockserver.domain import (
    BidTable,
    CloseKind,
    FakeClock,
    FaultPlan,
    IdSource,
    InMemoryStore,
    KeyRecord,
    ReplyQueue,
    Session,
    SessionBook,
    SessionKind,
    SimulatedUpstream,
)
from mockserver.domain.store import EMPTY
from mockserver.store import StoreUnavailable
from mockserver.store.redis.clock import RedisClock
from mockserver.store.redis.codecs import decode_ended, encode_ended, encode_record
from mockserver.store.redis.store import RedisStore
from mockserver.store.redis.wire import connect

SESSION = Session("0x" + "ab" * 32, "sk-AbC123", SessionKind.MODEL, "0xm", "m", 10.0, 3610.0)


def test_ended_sessions_round_trip_through_json_with_the_time_they_ended() -> None:
    assert decode_ended(encode_ended(SESSION, 12.5)) == (12.5, SESSION)


def test_a_wrong_url_fails_at_start() -> None:
    with pytest.raises(StoreUnavailable, match=r"cannot use the store redis://127\.0\.0\.1:1/0"):
        connect("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable, match="cannot use the store nope"):
        connect("nope")


def test_store_keeps_the_contract(client: redis.Redis) -> None:
    store = RedisStore(client, history_limit=2)
    assert store.transact("k", lambda current: (KeyRecord(SESSION, (SESSION,), 60.0), current.active)) is None
    assert store.active("k") == SESSION
    assert store.record("k") == KeyRecord(SESSION, (SESSION,), 60.0)
    assert store.keys() == ("k",)
    assert store.transact("k", lambda current: (EMPTY, current.active)) == SESSION
    assert store.active("k") is None
    for n in range(3):
        store.record_ended(Session(f"0x{n:064x}", "k" if n else "other", SessionKind.BID, "b", "b", 1.0, 2.0))
    assert [s.session_id[-1] for s in store.history()] == ["2", "1"]  # newest first, capped at 2
    assert [s.session_id[-1] for s in store.history("k", limit=1)] == ["2"]


def _replace_with(session: Session) -> Any:
    def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        return KeyRecord(session), None

    return change


def test_reset_forgets_one_key_or_everything(client: redis.Redis) -> None:
    store = RedisStore(client)
    for key in ("a", "b"):
        store.transact(key, _replace_with(Session(f"0x{ord(key):064x}", key, SessionKind.MODEL, "m", "m", 1.0, 9.0)))
        store.record_ended(Session(f"0x{ord(key) + 9:064x}", key, SessionKind.MODEL, "m", "m", 1.0, 2.0))
    store.reset("a")
    assert (store.keys(), [s.key for s in store.history()]) == (("b",), ["b"])
    store.reset()
    assert (store.keys(), store.history()) == ((), ())
    store.reset()  # nothing left to delete


def test_the_store_names_its_namespace(client: redis.Redis) -> None:
    assert repr(RedisStore(client, namespace="ns")) == "RedisStore(namespace='ns')"


def test_namespaces_keep_two_mocks_apart(client: redis.Redis) -> None:
    RedisStore(client, namespace="one").transact("k", lambda current: (KeyRecord(SESSION), None))
    assert RedisStore(client, namespace="two").active("k") is None


def test_a_conflicting_write_makes_the_transaction_decide_again(client: redis.Redis) -> None:
    store, decided = RedisStore(client), []

    def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        decided.append(current.active)
        if len(decided) == 1:  # another worker writes the key between our read and our write
            client.set(store.names.of_key("k", "record"), encode_record(KeyRecord(SESSION)))
        return KeyRecord(SESSION, synced_at=float(len(decided))), None  # a change: it must be written

    store.transact("k", change)
    assert decided == [None, SESSION]


@pytest.mark.parametrize(
    "make_store", [lambda client: RedisStore(client), lambda client: InMemoryStore()], ids=["redis", "memory"]
)
def test_r8_threads_racing_on_one_key_leave_one_session(client: redis.Redis, make_store: object) -> None:
    store = make_store(client)  # type: ignore[operator]
    clock = FakeClock()
    upstream = SimulatedUpstream(None, clock, FaultPlan(clock=clock), ReplyQueue(), BidTable())
    book = SessionBook(store, clock, IdSource(None), upstream)
    returned: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for step in range(25):
            model = f"0x{(n + step) % 3}"
            if step % 5 == 4:
                book.close("k")
                continue
            session = book.create_model_session("k", model, model, 3600)
            with lock:
                returned.append(session.session_id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    active = store.active("k")
    ended = [session.session_id for session in store.history("k")]
    assert len(ended) == len(set(ended)), "a session ended twice"
    assert set(returned) <= set(ended) | ({active.session_id} if active else set())
    assert book.close("k").kind in (CloseKind.CLOSED, CloseKind.NONE)


def test_the_clock_offset_is_shared(client: redis.Redis) -> None:
    now = [1000.0]
    first, second = RedisClock(client, source=lambda: now[0]), RedisClock(client, source=lambda: now[0])
    assert first.now() == 1000.0
    assert first.advance(60) == 1060.0
    assert second.now() == 1060.0
    assert second.set(5000.0) == 5000.0
    now[0] += 1
    assert first.now() == 5001.0


def test_each_key_keeps_its_history_and_all_keys_merge_by_the_time_sessions_ended(client: redis.Redis) -> None:
    times = iter([1.0, 2.0, 3.0, 4.0, 5.0])
    store = RedisStore(client, history_limit=2, stamp=lambda: next(times))
    for n, key in enumerate(("a", "a", "b", "a", "b")):  # session n ends at n + 1
        store.record_ended(Session(f"0x{n:064x}", key, SessionKind.BID, "b", "b", 1.0, 2.0))
    assert [s.session_id[-1] for s in store.history("a")] == ["3", "1"]  # a key's own two newest
    assert [s.session_id[-1] for s in store.history("b")] == ["4", "2"]
    assert [s.session_id[-1] for s in store.history()] == ["4", "3"]  # every key's, newest first, two at most
    assert [s.session_id[-1] for s in store.history(limit=9)] == ["4", "3"]
    assert [s.session_id[-1] for s in store.history(limit=1)] == ["4"]
