"""RedisStore keeps the SessionStore contract, atomically per key across tasks and workers (R8); the clock is shared."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any

import pytest
import redis

from mockserver.domain import InvalidTime, KeyRecord, Session, SessionKind
from mockserver.domain.store import EMPTY
from mockserver.store import StoreUnavailable
from mockserver.store.redis import codecs
from mockserver.store.redis.clock import RedisClock
from mockserver.store.redis.codecs import decode_ended, decode_record, encode_ended, encode_record
from mockserver.store.redis.store import RedisStore
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import Wire, connect

pytestmark = pytest.mark.anyio
SESSION = Session("0x" + "ab" * 32, "sk-AbC123", SessionKind.MODEL, "0xm", "m", 10.0, 3610.0)
Change = Callable[[KeyRecord], Coroutine[Any, Any, tuple[KeyRecord, Any]]]


def _session(n: int, key: str = "k") -> Session:
    return Session(f"0x{n:064x}", key, SessionKind.BID, "b", "b", 1.0, 2.0)


def _to(record: KeyRecord, result: Any = None) -> Change:
    async def change(current: KeyRecord) -> tuple[KeyRecord, Any]:
        return record, result

    return change


async def _end(store: RedisStore, session: Session) -> None:
    """Record `session` as ended on its key (its record stays empty)."""
    await store.transact(session.key, _to(EMPTY, session), lambda ended: [ended])


def test_ended_sessions_round_trip_through_json_with_the_time_they_ended() -> None:
    assert decode_ended(encode_ended(SESSION, 12.5)) == (12.5, SESSION)


def test_a_wrong_url_fails_at_start() -> None:
    with pytest.raises(StoreUnavailable, match=r"cannot use the store redis://127\.0\.0\.1:1/0"):
        connect("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable, match="cannot use the store nope"):
        connect("nope")


async def test_store_keeps_the_contract(wire: Wire) -> None:
    store = RedisStore(wire, history_limit=2)

    async def replace(current: KeyRecord) -> tuple[KeyRecord, Session | None]:
        return KeyRecord(SESSION, (SESSION,), 60.0), current.active

    assert await store.transact("k", replace) is None
    assert await store.record("k") == KeyRecord(SESSION, (SESSION,), 60.0)
    assert await store.keys() == ("k",)
    assert await store.transact("k", _to(EMPTY, "gone")) == "gone"
    assert (await store.record("k")).active is None
    for n in range(3):
        await _end(store, _session(n, "k" if n else "other"))
    assert [s.session_id[-1] for s in await store.history()] == ["2", "1"]  # newest first, capped at 2
    assert [s.session_id[-1] for s in await store.history("k", limit=1)] == ["2"]
    assert await store.history("nobody") == ()


async def test_keys_are_listed_page_by_page(wire: Wire, client: redis.Redis) -> None:
    client.mset({RedisStore(wire).names.of_key(f"k{n:04}", "record"): "{}" for n in range(2500)})
    assert len(await RedisStore(wire).keys()) == 2500


async def test_reset_forgets_one_key_or_everything(wire: Wire) -> None:
    store = RedisStore(wire)
    for key in ("a", "b"):
        await store.transact(key, _to(KeyRecord(Session(f"0x{ord(key):064x}", key, SessionKind.MODEL, "m", "m", 1, 9))))
        await _end(store, _session(ord(key) + 9, key))
        await store.transact(key, _to(KeyRecord(SESSION)))
    await store.reset("a")
    assert (await store.keys(), [s.key for s in await store.history()]) == (("b",), ["b"])
    await store.reset()
    assert (await store.keys(), await store.history()) == ((), ())
    await store.reset()  # nothing left to delete


def test_the_store_names_its_namespace(wire: Wire) -> None:
    assert repr(RedisStore(wire, namespace="ns")) == "RedisStore(namespace='ns')"


async def test_namespaces_keep_two_mocks_apart(wire: Wire) -> None:
    await RedisStore(wire, namespace="one").transact("k", _to(KeyRecord(SESSION)))
    assert (await RedisStore(wire, namespace="two").record("k")).active is None


async def test_a_conflicting_write_makes_the_transaction_decide_again(wire: Wire, client: redis.Redis) -> None:
    store, decided = RedisStore(wire), []

    async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        decided.append(current.active)
        if len(decided) == 1:  # another worker writes the key between our read and our write
            client.set(store.names.of_key("k", "record"), encode_record(KeyRecord(SESSION)))
        await asyncio.sleep(0)  # a change may await (the upstream)
        return KeyRecord(SESSION, synced_at=float(len(decided))), None  # a change: it must be written

    await store.transact("k", change)
    assert decided == [None, SESSION]  # the second try decided on what the script found, with no read


def _race(store: RedisStore, worker: int, tasks: int, rounds: int, returned: list[str]) -> None:
    """`tasks` coroutines of one worker open, switch and close sessions of one key, each change awaiting."""

    async def one(n: int) -> None:
        for step in range(rounds):
            opened = _session(100_000 * worker + 1000 * n + step + 1, "k")

            new = EMPTY if step % 5 == 4 else KeyRecord(opened)

            async def change(current: KeyRecord, new: KeyRecord = new) -> tuple[KeyRecord, tuple[Session, ...]]:
                await asyncio.sleep(0)  # the upstream answers meanwhile: other tasks run
                return new, (() if current.active is None else (current.active,))

            await store.transact("k", change, lambda ended: ended)
            if step % 5 != 4:
                returned.append(opened.session_id)

    async def every() -> None:
        await asyncio.gather(*(one(n) for n in range(tasks)))

    asyncio.run(every())


def test_r8_tasks_and_workers_racing_on_one_key_leave_one_session(redis_url: str, client: redis.Redis) -> None:
    """Two workers (threads, each its own loop, wire and view), eight tasks each: no session lost or doubled."""
    returned: list[str] = []
    stores = [RedisStore(connect(redis_url)) for _ in range(2)]
    threads = [threading.Thread(target=_race, args=(store, n, 8, 15, returned)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def read() -> tuple[KeyRecord, tuple[Session, ...]]:
        return await stores[0].record("k"), await stores[0].history("k")

    record, history = asyncio.run(read())
    ended = [session.session_id for session in history]
    assert len(ended) == len(set(ended)), "a session ended twice"
    kept = set(ended) | ({record.active.session_id} if record.active else set())
    assert set(returned) <= kept, "a session a client was given is gone"
    assert len(returned) == 2 * 8 * 12


def test_two_workers_writing_one_key_back_to_back_both_get_through(redis_url: str, client: redis.Redis) -> None:
    """Every request a write on one key, 16 tasks in each of two workers: a worker whose write met a conflict
    takes the key's turn, so the other worker's queue cannot win every race and none ends in StoreBusy."""
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        store = RedisStore(connect(redis_url))

        async def one(task: int) -> None:
            for step in range(20):
                await store.transact("k", _to(KeyRecord(SESSION, synced_at=float(n * 10_000 + task * 100 + step))))

        async def every() -> None:
            await asyncio.gather(*(one(task) for task in range(16)))

        try:
            asyncio.run(every())
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert client.get(RedisStore(connect(redis_url)).names.of_key("k", "turn")) is None  # the last turn was used


async def test_a_turn_another_worker_holds_is_waited_out(wire: Wire, client: redis.Redis) -> None:
    store = RedisStore(wire)
    client.set(store.names.of_key("k", "turn"), "another worker", px=30)  # it met a conflict, then went away
    await store.transact("k", _to(KeyRecord(SESSION)))  # refused until the turn passes, then written
    assert (await store.record("k")).active == SESSION


async def test_the_clock_offset_is_shared(wire: Wire) -> None:
    now = [1000.0]
    first = RedisClock(wire, source=lambda: now[0])
    second = RedisClock(wire, source=lambda: now[0])  # another worker: its own view
    assert first.now() == 1000.0
    assert await first.advance(60) == 1060.0
    assert first.now() == 1060.0  # its own move: seen at once
    await second.view.fresh()  # the other worker's next request
    assert second.now() == 1060.0
    assert await second.set(5000.0) == 5000.0
    now[0] += 1
    await first.view.fresh()
    assert first.now() == 5001.0
    assert repr(first) == "RedisClock('{morpheus-mock}:admin', 'clock-offset')"


async def test_the_redis_clock_keeps_every_clock_s_bounds(wire: Wire) -> None:
    clock = RedisClock(wire, source=lambda: 1000.0)
    await clock.advance(60)
    moves: list[Callable[[], Awaitable[float]]] = [
        lambda: clock.set(2.6e11),
        lambda: clock.advance(1e300),
        lambda: clock.set(float("nan")),
    ]
    for move in moves:
        with pytest.raises(InvalidTime, match="clock time must be between 0 and 253402300799"):
            await move()
    assert clock.now() == 1060.0


async def test_each_key_keeps_its_history_and_all_keys_merge_by_the_time_sessions_ended(wire: Wire) -> None:
    times = iter([1.0, 2.0, 3.0, 4.0, 5.0])
    store = RedisStore(wire, history_limit=2, stamp=lambda: next(times))
    for n, key in enumerate(("a", "a", "b", "a", "b")):  # session n ends at n + 1
        await _end(store, _session(n, key))
    assert [s.session_id[-1] for s in await store.history("a")] == ["3", "1"]  # a key's own two newest
    assert [s.session_id[-1] for s in await store.history("b")] == ["4", "2"]
    assert [s.session_id[-1] for s in await store.history()] == ["4", "3"]  # every key's, newest first, two at most
    assert [s.session_id[-1] for s in await store.history(limit=9)] == ["4", "3"]
    assert [s.session_id[-1] for s in await store.history(limit=1)] == ["4"]


async def test_a_view_of_its_own_names_its_snapshot(wire: Wire) -> None:
    view = RedisView(wire)
    await view.fresh()
    assert repr(view) == "RedisView(1 fields)"  # a new store: only the generation token


def test_a_record_this_worker_encoded_is_read_back_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    record = KeyRecord(SESSION, (SESSION,), 60.0)
    text = encode_record(record)
    monkeypatch.setattr(codecs, "_from_fields", None)  # any decoding would fail
    assert decode_record(text) is record  # the next transaction of the key, chained behind the write
    assert decode_record(bytes(text)) is record  # a request's look: the same text, as Redis answers it


def test_records_known_by_their_text_are_all_forgotten_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codecs, "RECORDS_KEPT", 2)
    texts = [encode_record(KeyRecord(SESSION, (), float(n))) for n in range(2)]  # 2 known
    assert decode_record(texts[0]) is decode_record(texts[0])
    third = encode_record(KeyRecord(SESSION, (), 2.0))  # full: the others are forgotten
    assert decode_record(texts[0]) == KeyRecord(SESSION, (), 0.0)  # decoded again, and known again
    assert decode_record(third) == KeyRecord(SESSION, (), 2.0)


def test_what_orjson_refuses_is_written_and_read_back_by_the_json_module(monkeypatch: pytest.MonkeyPatch) -> None:
    odd = replace(SESSION, requested="\ud800")  # a chat's model as sent: JSON's "\\ud800" escape, a lone surrogate
    text = encode_record(KeyRecord(odd))
    monkeypatch.setattr(codecs, "_RECORDS", {})  # read back as another worker would
    assert (decode_record(text), decode_ended(encode_ended(odd, 1.5))) == (KeyRecord(odd), (1.5, odd))
    assert codecs.loads(codecs.dumps([2**64, 1.5])) == [2**64, 1.5]  # beyond 64 bits
