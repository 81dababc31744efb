"""`--store` in few round trips on asyncio connections: a request reads the admin token and its key's record in
one (`RedisView.fresh`), the admin hash again only after a change, and a transaction that writes adds one
compare-and-set script (`swap`); a conflict's script answers the current value, so a retry reads nothing.
Every guarantee stays; every connection belongs to one loop and one that failed is never used again."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import hiredis
import pytest
import redis
from redis._parsers import _AsyncRESP2Parser
from starlette.testclient import TestClient

from mockserver.config import Config
from mockserver.domain import ApiKey, JournalEntry, KeyRecord, Session, SessionKind
from mockserver.domain.store import EMPTY
from mockserver.store import StoreBusy, StoreUnavailable
from mockserver.store.redis import wire as wire_module
from mockserver.store.redis.codecs import FaultsCodec, KeysCodec, encode_record
from mockserver.store.redis.journal import TRIM_EVERY, RedisJournal
from mockserver.store.redis.slots import RedisSlots
from mockserver.store.redis.store import _SWAP, RedisStore
from mockserver.store.redis.transaction import ATTEMPTS
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import GATHER, Connection, Wire, connect, text
from mockserver.web.app import create_app
from tests.served import KEYS

pytestmark = pytest.mark.anyio
SESSION = Session("0x" + "ab" * 32, "k", SessionKind.MODEL, "m", "m", 1.0, 2.0)
OTHER = Session("0x" + "cd" * 32, "k", SessionKind.MODEL, "m", "m", 1.0, 2.0)
PING = "/api/v1/session/pingsession"
MODEL = "/api/v1/session/modelsession"
CLOSE = "/api/v1/session/closesession"
CHAT = "/api/v1/chat/completions"


class Trips:
    """Counts the round trips the mock waits for (`Wire.submit`, which `Wire.call` uses) and the writes it does not
    wait for (`Wire.send`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = self.sends = 0
        submit, send = Wire.submit, Wire.send

        def counted(wire: Wire, *commands: Any) -> asyncio.Future[list[Any]]:
            self.calls += 1
            return submit(wire, *commands)

        def unawaited(wire: Wire, *commands: Any) -> None:
            self.sends += 1
            send(wire, *commands)

        monkeypatch.setattr(Wire, "submit", counted)
        monkeypatch.setattr(Wire, "send", unawaited)

    async def of(self, work: Callable[[], Awaitable[Any]]) -> int:
        self.calls = 0
        await work()
        return self.calls


def _worker(wire: Wire) -> tuple[RedisView, RedisStore, RedisSlots[Any]]:
    view = RedisView(wire)
    return view, RedisStore(wire, view=view), RedisSlots(wire, "faults", FaultsCodec(), view=view)


@pytest.fixture
def fresh_server(client: redis.Redis) -> None:
    """A server that never ran the store's scripts: the wire loads them first on the line it opens (`Wire.preload`),
    so a transaction's first run of one by its hash does not meet NOSCRIPT (and try again)."""
    client.script_flush()


def _writes_a_record(commands: Any) -> bool:
    """Whether `commands` (as `Wire.submit` gets them) run the compare-and-set of a key's record (not a look's
    catch-up with the admin hash, also a script)."""
    return bool(commands[0][:2] == ["EVALSHA", _SWAP.sha])


def _to(record: KeyRecord, result: Any = None) -> Callable[[KeyRecord], Coroutine[Any, Any, tuple[KeyRecord, Any]]]:
    async def change(current: KeyRecord) -> tuple[KeyRecord, Any]:
        return record, result

    return change


def _beaten(
    store: RedisStore, client: redis.Redis, seen: list[tuple[str, Session | None]], meanwhile: Callable[[], None]
) -> Callable[[KeyRecord], Coroutine[Any, Any, tuple[KeyRecord, None]]]:
    """A change whose first try another worker beats (it writes the key first); `meanwhile` runs as its retry is
    decided, when the key is contended."""

    async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        seen.append(("first", current.active))
        if len(seen) == 1:
            client.set(store.names.of_key("k", "record"), encode_record(KeyRecord(OTHER)))  # another worker
        else:
            meanwhile()
        return KeyRecord(SESSION), None

    return change


async def test_a_request_costs_one_trip_to_read_and_one_to_write(
    wire: Wire, fresh_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, store, slots = _worker(wire)
    await view.fresh()  # the first look loads the admin hash
    trips = Trips(monkeypatch)

    async def request(record: KeyRecord) -> None:
        async with view.fresh("k"), view.fresh("k"):  # two requests of one key at once
            assert slots.get("faults") is None  # the snapshot: no trip
            await store.transact("k", _to(record))

    assert await trips.of(lambda: request(KeyRecord(SESSION))) == 2 + 1  # the looks, the script
    assert await trips.of(lambda: request(KeyRecord(SESSION))) == 1 + 1  # a reuse: it only reads
    assert await trips.of(lambda: request(EMPTY)) == 2 + 1

    async def admin() -> None:
        async with view.fresh():  # a request without a key: the token only
            assert slots.get("faults") is None

    assert await trips.of(admin) == 1

    async def two_steps() -> None:  # a bidsession: two transactions of its key, the chain's answer between
        async with view.fresh("k"):
            await store.transact("k", _to(KeyRecord(OTHER)))
            await store.transact("k", _to(KeyRecord(SESSION)))  # starts from what the first one wrote

    assert await trips.of(two_steps) == 3
    assert await trips.of(lambda: store.transact("k", _to(KeyRecord(OTHER)))) == 2  # nothing read ahead: a GET


async def test_the_admin_hash_is_read_again_only_after_a_change(
    wire: Wire, fresh_server: None, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, _, slots = _worker(wire)
    _, _, theirs = _worker(connect(redis_url))  # another worker
    await view.fresh()
    trips = Trips(monkeypatch)
    assert await trips.of(lambda: theirs.update("faults", lambda now: ((), "armed"))) == 1  # one script
    assert slots.get("faults") is None  # this worker has not looked since
    assert await trips.of(view.fresh) == 2  # the token moved: the hash again
    assert slots.get("faults") == ()
    assert await trips.of(view.fresh) == 1
    assert await trips.of(lambda: slots.update("faults", lambda now: (None, "cleared"))) == 1
    assert slots.get("faults") is None  # its own change: seen at once, and its snapshot still whole
    assert await trips.of(view.fresh) == 1


async def test_a_look_after_another_worker_s_changes_reads_only_the_fields_they_wrote(
    wire: Wire, redis_url: str, client: redis.Redis
) -> None:
    """Two `--accept-any-key` workers meeting 200 new keys: each key is one field of the admin hash, and the other
    worker's look reads that field, not the whole hash of every key seen so far."""
    view, _, _ = _worker(wire)
    keys = RedisSlots(connect(redis_url), "keys", KeysCodec())  # another worker
    await view.fresh()
    client.config_resetstat()
    for n in range(200):
        await keys.update(f"sk-{n:06d}", lambda now: ((), None))
        await view.fresh()
        assert view.field(f"keys:sk-{n:06d}", "reading a key") == b"[]"
    await keys.update("sk-000007", lambda now: (None, None))  # deleted
    await keys.update("sk-000008", lambda now: ((ApiKey("sk-000008", "hash"),), None))
    await view.fresh()
    stats = client.info("commandstats")
    assert ("cmdstat_hgetall" in stats, stats["cmdstat_hmget"]["calls"]) == (False, 201)
    assert view._snapshot == {text(name): value for name, value in client.hgetall(view.admin).items()}


async def test_a_look_reads_the_whole_admin_hash_when_the_log_cannot_say_what_changed(
    wire: Wire, redis_url: str, client: redis.Redis
) -> None:
    view, _, slots = _worker(wire)
    theirs = RedisSlots(connect(redis_url), "faults", FaultsCodec())
    await view.fresh()
    await theirs.update("faults", lambda now: ((), None))
    client.delete(view.log)  # lost (or trimmed past what this worker knew)
    client.config_resetstat()
    await view.fresh()
    assert (slots.get("faults"), client.info("commandstats")["cmdstat_hgetall"]["calls"]) == ((), 1)
    client.flushdb()  # a new store: a new epoch, whatever this worker's snapshot counted
    await theirs.view.fresh()
    await theirs.update("faults", lambda now: ((), None))
    await view.fresh()
    assert slots.get("faults") == ()
    generation = client.hget(view.admin, "generation")
    client.hset(view.admin, "generation", "a-token-of-an-older-mock")  # a generation of another form counts 0
    await view.fresh()
    await theirs.update("faults", lambda now: (None, None))
    client.config_resetstat()
    await view.fresh()
    assert (slots.get("faults"), "cmdstat_hgetall" in client.info("commandstats")) == (None, False)
    assert generation != client.hget(view.admin, "generation") == b"a-token-of-an-older-mock:1"


async def test_a_change_decided_on_a_stale_snapshot_is_retried_on_the_store_s_value(
    wire: Wire, fresh_server: None, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, _, slots = _worker(wire)
    _, _, theirs = _worker(connect(redis_url))
    await view.fresh()
    await theirs.update("faults", lambda now: ((), None))  # after this worker's look
    seen: list[Any] = []

    def change(now: Any) -> tuple[Any, None]:
        seen.append(now)
        return (() if now is None else None), None

    trips = Trips(monkeypatch)
    assert await trips.of(lambda: slots.update("faults", change)) == 2  # the conflict answers the value: no HGET
    assert seen == [None, ()]
    await view.fresh()
    assert slots.get("faults") is None
    assert await trips.of(lambda: slots.update("faults", lambda now: (None, None))) == 0  # nothing changes


async def test_requests_of_one_key_queue_in_their_worker_instead_of_conflicting(
    wire: Wire, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, store, _ = _worker(wire)
    await view.fresh()
    client.config_resetstat()
    decided: list[int] = []

    async def request(n: int) -> None:
        async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
            decided.append(n)
            await asyncio.sleep(0)  # the upstream: every other request looks meanwhile
            return KeyRecord(SESSION, synced_at=float(n)), None

        async with view.fresh("k"):
            await store.transact("k", change)

    await asyncio.gather(*(request(n) for n in range(32)))
    assert sorted(decided) == list(range(32))  # each decided once: its first try was on what the worker wrote
    assert int(client.info("commandstats")["cmdstat_evalsha"]["calls"]) == 32


async def test_a_request_s_record_is_what_it_read_ahead_then_what_its_transactions_left(
    wire: Wire, client: redis.Redis
) -> None:
    view, store, _ = _worker(wire)
    decided: list[Session | None] = []

    async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        decided.append(current.active)
        return KeyRecord(SESSION), None

    async with view.fresh("k"):
        await store.transact("k", change)  # the record as the request found it: no GET
    client.delete(store.names.of_key("k", "record"))
    async with view.fresh("k"):
        client.set(store.names.of_key("k", "record"), encode_record(KeyRecord(OTHER)))  # another worker, meanwhile
        await store.transact("k", change)
        assert view.ahead(store.names.of_key("k", "record")) == (encode_record(KeyRecord(SESSION)),)  # as written
    async with view.fresh("k"):
        await store.transact("k", _to(KeyRecord(SESSION)))  # unchanged: nothing written
        known = (encode_record(KeyRecord(SESSION)),)  # as Redis answered it
        assert view.ahead(store.names.of_key("k", "record")) == known  # it serves the request's next read too
    async with view.fresh("k"):
        client.set(store.names.of_key("k", "record"), encode_record(KeyRecord(OTHER)))  # another worker, meanwhile
        await store.transact("k", _to(KeyRecord(OTHER)))  # decided on SESSION: the conflict, then nothing to write
        found = (encode_record(KeyRecord(OTHER)),)
        assert view.ahead(store.names.of_key("k", "record")) == found  # what its retry decided on, not the stale one

        async def failing(current: KeyRecord) -> tuple[KeyRecord, None]:
            raise LookupError("the change failed")

        with pytest.raises(LookupError):
            await store.transact("k", failing)
        assert view.ahead(store.names.of_key("k", "record")) is None  # a failed transaction: read it again
    async with view.fresh("other"):
        assert view.ahead(store.names.of_key("k", "record")) is None  # another key's request
    assert decided == [None, None, OTHER]


async def test_transactions_of_one_key_decide_behind_a_write_in_flight(
    wire: Wire, fresh_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write is sent without waiting for its answer: the next transaction of the key decides on what it will
    leave there, so a worker's hot key is not one round trip at a time."""
    _, store, _ = _worker(wire)
    seen: list[Session | None] = []

    def to(record: KeyRecord) -> Callable[[KeyRecord], Coroutine[Any, Any, tuple[KeyRecord, None]]]:
        async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
            seen.append(current.active)
            return record, None

        return change

    trips = Trips(monkeypatch)
    writes = [store.transact("k", to(KeyRecord(SESSION))), store.transact("k", to(KeyRecord(SESSION)))]
    await asyncio.gather(*writes, store.transact("k", to(KeyRecord(OTHER))))  # a write, a reuse, a switch
    assert seen == [None, SESSION, SESSION]
    assert trips.calls == 1 + 2  # nothing read ahead (a GET), the two scripts: nothing read between them
    assert (await store.record("k")).active == OTHER


async def test_a_write_another_worker_beat_is_decided_again_on_what_the_script_found(
    wire: Wire, fresh_server: None, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store, _ = _worker(wire)
    name, turn = store.names.of_key("k", "record"), store.names.of_key("k", "turn")
    seen: list[Session | None] = []

    async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        seen.append(current.active)
        if len(seen) == 1:
            client.set(name, encode_record(KeyRecord(OTHER)))  # another worker writes first
            return KeyRecord(SESSION), None
        return current, None  # on what it found: nothing left to change

    trips = Trips(monkeypatch)
    await store.transact("k", change)
    assert seen == [None, OTHER]
    assert trips.calls == 1 + 1  # the GET and the script that met the conflict: its answer served the retry
    await store.record("k")  # what was sent without waiting has been read back
    assert client.get(turn) is None  # the turn its conflict took was handed back: it wrote nothing after


async def test_once_another_worker_wrote_first_a_key_s_transactions_wait_for_their_answers(
    wire: Wire, fresh_server: None, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store, _ = _worker(wire)
    seen: list[tuple[str, Session | None]] = []
    later: list[asyncio.Task[None]] = []
    change = _beaten(store, client, seen, lambda: later.append(asyncio.create_task(store.transact("k", then))))

    async def then(current: KeyRecord) -> tuple[KeyRecord, None]:
        seen.append(("then", current.active))
        return KeyRecord(OTHER), None

    trips = Trips(monkeypatch)
    await store.transact("k", change)
    await later[0]
    assert seen == [("first", None), ("first", OTHER), ("then", SESSION)]  # it waited for the retry's answer
    assert trips.calls == 1 + 2 + 1  # the GET, the two scripts of the first, the script of the next


async def test_a_contended_key_s_waiting_transactions_are_decided_in_turn_and_written_together(
    wire: Wire, fresh_server: None, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store, _ = _worker(wire)
    seen: list[tuple[str, Session | None]] = []
    later: list[asyncio.Task[Any]] = []
    change = _beaten(  # three more transactions of the key come while its retry is decided
        store,
        client,
        seen,
        lambda: later.extend(
            asyncio.create_task(store.transact("k", step, ended)) for step in (close, failing, reopen)
        ),
    )

    async def close(current: KeyRecord) -> tuple[KeyRecord, Session | None]:
        seen.append(("close", current.active))
        return EMPTY, current.active

    async def failing(current: KeyRecord) -> tuple[KeyRecord, None]:
        seen.append(("failing", current.active))
        raise ValueError("this one's own failure")

    async def reopen(current: KeyRecord) -> tuple[KeyRecord, None]:
        seen.append(("reopen", current.active))
        return KeyRecord(OTHER), None

    def ended(result: Session | None) -> tuple[Session, ...]:
        return () if result is None else (result,)

    trips = Trips(monkeypatch)
    await store.transact("k", change)
    closed, failed, reopened = await asyncio.gather(*later, return_exceptions=True)
    assert seen == [("first", None), ("first", OTHER), ("close", SESSION), ("failing", None), ("reopen", None)]
    assert (closed, reopened, str(failed)) == (SESSION, None, "this one's own failure")
    assert trips.calls == 1 + 2 + 1  # the GET, the two scripts of the first; ONE script for the three after it
    assert ((await store.record("k")).active, await store.history()) == (OTHER, (SESSION,))


async def test_a_contended_batch_that_always_conflicts_fails_every_transaction_in_it(
    wire: Wire, fresh_server: None, client: redis.Redis
) -> None:
    _, store, _ = _worker(wire)
    name, decisions = store.names.of_key("k", "record"), []

    async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        decisions.append(1)
        client.set(name, encode_record(KeyRecord(SESSION, synced_at=len(decisions))))  # another worker, every time
        return KeyRecord(OTHER), None

    queue = store._using(name)
    queue.contended = True  # another worker wrote this key before
    async with queue.lock:  # both wait for the key, then go in one batch
        both = [asyncio.create_task(store.transact("k", change)) for _ in range(2)]
        await asyncio.sleep(0)
    failures = await asyncio.gather(*both, return_exceptions=True)
    store._used(name, queue)
    assert [type(failure) for failure in failures] == [StoreBusy, StoreBusy]
    assert len(decisions) == 2 * ATTEMPTS  # each attempt decided both


async def test_a_contended_batch_whose_first_gave_up_leaves_the_rest_to_be_decided(
    wire: Wire, fresh_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store, _ = _worker(wire)
    name, seen = store.names.of_key("k", "record"), []
    held: list[asyncio.Future[list[Any]]] = []
    submit = Wire.submit

    def holding(wire: Wire, *commands: Any) -> asyncio.Future[list[Any]]:
        if _writes_a_record(commands) and not held:  # the first batch's write is never answered
            held.append(asyncio.get_running_loop().create_future())
            return held[-1]
        return submit(wire, *commands)

    def to(name: str, record: KeyRecord) -> Callable[[KeyRecord], Coroutine[Any, Any, tuple[KeyRecord, None]]]:
        async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
            seen.append(name)
            return record, None

        return change

    monkeypatch.setattr(Wire, "submit", holding)
    queue = store._using(name)
    queue.contended = True
    async with queue.lock:
        first = asyncio.create_task(store.transact("k", to("first", KeyRecord(SESSION))))
        gone = asyncio.create_task(store.transact("k", to("gone", KeyRecord(SESSION))))
        rest = asyncio.create_task(store.transact("k", to("rest", KeyRecord(OTHER))))
        await asyncio.sleep(0)
        gone.cancel()  # gives up before any batch takes it
        await asyncio.sleep(0)
    while not held:
        await asyncio.sleep(0)
    first.cancel()  # gives up while its batch's write is under way
    await rest  # its own batch now, decided again on the store's value
    store._used(name, queue)
    assert (first.cancelled(), gone.cancelled(), seen) == (True, True, ["first", "rest", "rest"])
    assert ((await store.record("k")).active, queue.waiting) == (OTHER, [])


async def test_a_write_whose_line_broke_leaves_the_next_transaction_to_read_anew(
    wire: Wire, fresh_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store, _ = _worker(wire)
    held: list[asyncio.Future[list[Any]]] = []
    submit = Wire.submit

    def holding(wire: Wire, *commands: Any) -> asyncio.Future[list[Any]]:
        if _writes_a_record(commands) and len(held) < 2:  # the first two writes: their answers are the test's
            held.append(asyncio.get_running_loop().create_future())
            return held[-1]
        return submit(wire, *commands)

    monkeypatch.setattr(Wire, "submit", holding)
    first = asyncio.create_task(store.transact("k", _to(KeyRecord(SESSION))))
    second = asyncio.create_task(store.transact("k", _to(KeyRecord(OTHER))))  # decided behind the first
    while len(held) < 2:
        await asyncio.sleep(0)
    held[1].set_exception(redis.ConnectionError("the line broke"))
    with pytest.raises(StoreUnavailable, match="the line broke"):
        await second
    await store.transact("k", _to(KeyRecord(OTHER)))  # reads the record again (nothing is there), then writes
    held[0].set_result([[1]])
    await first
    assert (await store.record("k")).active == OTHER


async def test_a_request_decides_on_its_own_look_rather_than_an_older_write_of_its_worker(
    wire: Wire, fresh_server: None, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, store, _ = _worker(wire)
    held: list[asyncio.Future[list[Any]]] = []
    gate = asyncio.Event()
    seen: list[Session | None] = []
    submit = Wire.submit

    def holding(wire: Wire, *commands: Any) -> asyncio.Future[list[Any]]:
        if _writes_a_record(commands):
            held.append(asyncio.get_running_loop().create_future())
            return held[-1]
        return submit(wire, *commands)

    async def waiting(current: KeyRecord) -> tuple[KeyRecord, None]:
        await gate.wait()  # holds the key's queue while the rest happens
        return current, None

    async def looking(current: KeyRecord) -> tuple[KeyRecord, None]:
        seen.append(current.active)
        return current, None

    async def request() -> None:
        async with view.fresh("k"):
            await store.transact("k", looking)

    monkeypatch.setattr(Wire, "submit", holding)
    first = asyncio.create_task(store.transact("k", _to(KeyRecord(SESSION))))
    queued = asyncio.create_task(store.transact("k", waiting))
    while not held:
        await asyncio.sleep(0)
    held[0].set_result([[1]])  # this worker's write is applied...
    await first
    client.set(store.names.of_key("k", "record"), encode_record(KeyRecord(OTHER)))  # ...then another worker's
    plain = asyncio.create_task(store.transact("k", looking))  # no look of its own
    later = asyncio.create_task(request())  # looks after both writes, then waits for the key's queue
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(queued, plain, later)
    assert seen == [SESSION, OTHER]  # what this worker's write left; what the look read, not that older write


async def test_a_loop_turn_s_journal_entries_go_in_one_push(
    wire: Wire, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal, entry = RedisJournal(wire, 3), JournalEntry(1.0, "POST", "/", "", "k", None, 200)
    trips = Trips(monkeypatch)
    for n in range(TRIM_EVERY + 1):
        journal.record(entry._replace(at=float(n)))
    await asyncio.sleep(0)  # the turn ends
    assert trips.sends == 1  # one LPUSH of all (with an LTRIM: it passed the TRIM_EVERY-th entry)
    assert [each["at"] for each in await journal.entries()] == [16.0, 15.0, 14.0]
    assert client.llen(journal.name) == 3
    journal.record(entry._replace(at=17.0))
    assert (await journal.entries())[0]["at"] == 17.0  # the read sends what waits first
    assert (trips.sends, client.llen(journal.name)) == (2, 4)  # no trim: the next is at the 32nd entry


async def test_a_script_that_fails_is_the_store_failing(wire: Wire, fresh_server: None, client: redis.Redis) -> None:
    store = RedisStore(wire)
    client.set(store.names.of_key("k", "history"), "not a list")
    with pytest.raises(StoreUnavailable, match="WRONGTYPE"):
        await store.transact("k", _to(EMPTY, SESSION), lambda ended: [ended])


async def test_a_transaction_that_always_conflicts_ends_with_a_clear_error(wire: Wire, client: redis.Redis) -> None:
    store, attempts = RedisStore(wire), []

    async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        attempts.append(1)
        client.set(store.names.of_key("k", "record"), encode_record(KeyRecord(SESSION, synced_at=len(attempts))))
        return KeyRecord(SESSION), None  # a change, never the value another worker wrote

    with pytest.raises(
        StoreBusy, match=rf"\{{morpheus-mock:k\}}:record changed under every one of {ATTEMPTS} attempts"
    ):
        await store.transact("k", change)
    assert len(attempts) == ATTEMPTS


async def test_a_slot_that_always_conflicts_ends_with_a_clear_error(wire: Wire, client: redis.Redis) -> None:
    view, _, slots = _worker(wire)
    attempts = []

    def change(now: Any) -> tuple[Any, None]:
        attempts.append(1)
        client.hset(view.admin, "faults:faults", "[]" + " " * len(attempts))  # another worker, every time
        return (), None

    with pytest.raises(StoreBusy, match=r"\{morpheus-mock\}:admin faults:faults changed under every one of"):
        await slots.update("faults", change)
    assert len(attempts) == ATTEMPTS


async def test_a_store_that_forgot_the_script_gets_it_again(wire: Wire, client: redis.Redis) -> None:
    store = RedisStore(wire)
    await store.transact("k", _to(KeyRecord(SESSION)))
    client.script_flush()  # on the line it was loaded on: the next run by its hash meets NOSCRIPT
    await store.transact("k", _to(EMPTY, SESSION), lambda ended: [ended])
    assert ((await store.record("k")).active, await store.history()) == (None, (SESSION,))


async def test_a_line_opened_after_a_restart_loads_the_scripts_first(wire: Wire, client: redis.Redis) -> None:
    store, decided = RedisStore(wire), list[Session | None]()

    async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        decided.append(current.active)
        return KeyRecord(SESSION), None

    await store.record("k")  # the line opens
    client.script_flush()
    client.client_kill_filter(_type="normal", skipme=True)  # a restarted redis-server: no connection, no script
    with pytest.raises(StoreUnavailable):
        await store.record("k")
    await store.transact("k", change)
    assert decided == [None]  # one try: its script was loaded before it ran
    assert client.script_exists(_SWAP.sha) == [True]


async def test_a_wire_whose_connection_broke_opens_a_new_one(wire: Wire, client: redis.Redis) -> None:
    assert await wire.call(["SET", "x", "1"], ["GET", "x"]) == [b"OK", b"1"]
    client.client_kill_filter(_type="normal", skipme=True)  # the server drops every other connection
    with pytest.raises(redis.ConnectionError):
        await wire.call(["GET", "x"])
    assert await wire.call(["GET", "x"]) == [b"1"]
    assert repr(wire).startswith("Wire('redis://")


def _writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The commands in each write the wire makes from now on."""
    writes: list[int] = []
    send = Connection.send_packed_command

    async def counted(connection: Connection, command: Any, check_health: bool = True) -> None:
        writes.append(len(command))
        await send(connection, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counted)
    return writes


@pytest.mark.parametrize(("turns", "written"), [(1, [1]), (GATHER, [GATHER]), (GATHER + 3, [GATHER + 1, 2])])
async def test_commands_queued_a_turn_of_the_loop_apart_go_in_one_write(
    wire: Wire, client: redis.Redis, monkeypatch: pytest.MonkeyPatch, turns: int, written: list[int]
) -> None:
    assert await wire.call(["PING"]) == [b"PONG"]  # the line is open
    writes = _writes(monkeypatch)
    answers = []
    for _ in range(turns):  # a request's next command comes a turn or more after its answer: here, a turn apart
        answers.append(wire.submit(["INCR", "n"]))
        await asyncio.sleep(0)
    assert await asyncio.gather(*answers) == [[n] for n in range(1, turns + 1)]  # each its own answer, in order
    assert writes == written  # one write while each turn queued more, `GATHER` turns at most


async def test_a_line_that_breaks_while_its_write_gathers_writes_nothing(
    wire: Wire, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await wire.call(["PING"]) == [b"PONG"]
    line, writes = wire._line(asyncio.get_running_loop()), _writes(monkeypatch)
    doomed = wire.submit(["SET", "x", "1"])
    await asyncio.sleep(0)  # its write gathers
    wire._break(line, redis.ConnectionError("gone"))
    with pytest.raises(redis.ConnectionError, match="gone"):
        await doomed
    assert line.writer is not None
    await line.writer  # it ends without writing
    assert (writes, client.get("x")) == ([], None)
    assert await wire.call(["SET", "x", "2"], ["GET", "x"]) == [b"OK", b"2"]  # on a new line


async def test_an_error_answer_leaves_the_wire_in_step(wire: Wire, client: redis.Redis) -> None:
    client.set("x", "1")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        await wire.call(["LPUSH", "x", "a"], ["GET", "x"])  # the first fails, the second's answer is still read
    assert await wire.call(["GET", "x"]) == [b"1"]


PARSERS = pytest.mark.parametrize("parser", [None, _AsyncRESP2Parser], ids=["hiredis", "redis-py's own parser"])


def _parsing(wire: Wire, parser: type[_AsyncRESP2Parser] | None) -> Wire:
    if parser is not None:  # redis-py's parser in Python, which it uses when hiredis is missing
        wire._connection_kwargs["parser_class"] = parser
    return wire


@PARSERS
async def test_answers_are_read_in_order_whichever_parser_reads_them(
    wire: Wire, client: redis.Redis, parser: type[_AsyncRESP2Parser] | None
) -> None:
    _parsing(wire, parser)
    client.set("x", "1")
    values = [f"{n:02}" * 2000 for n in range(40)]  # 160 kB of answers: some split across the socket's reads
    replies = await asyncio.gather(
        *(wire.call(["SET", f"k{n}", value], ["GET", f"k{n}"]) for n, value in enumerate(values))
    )
    assert replies == [[b"OK", value.encode()] for value in values]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        await wire.call(["LPUSH", "x", "a"], ["GET", "x"])
    assert await wire.call(["GET", "x"]) == [b"1"]
    line = wire._lines[asyncio.get_running_loop()]
    in_bulk = not isinstance(wire_module._answers(line.connection), functools.partial)
    assert in_bulk is (parser is None)  # with hiredis, as the mock installs it, every answer it holds in one go


@PARSERS
async def test_a_store_still_loading_its_data_breaks_the_line(parser: type[_AsyncRESP2Parser] | None) -> None:
    """An error answer redis-py counts as a connection's (LOADING: `BusyLoadingError`) fails the request and the
    line, as a broken connection does; the next request opens a new one."""
    answered: list[bytes] = []
    connections = 0

    async def loading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        commands = hiredis.Reader()
        while data := await reader.read(65536):
            commands.feed(data)
            while (command := commands.gets()) is not False:
                answered.append(command[0])
                writer.write(
                    b"-LOADING Redis is loading the dataset in memory\r\n" if command[0] == b"GET" else b"+OK\r\n"
                )
        writer.close()

    server = await asyncio.start_server(loading, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        wire = _parsing(Wire(f"redis://127.0.0.1:{port}/0"), parser)
        for _ in range(2):
            with pytest.raises(redis.BusyLoadingError):
                await wire.call(["GET", "x"])
        await wire.close()
    assert (answered.count(b"GET"), connections) == (2, 2)  # each on a line of its own


async def test_a_request_that_gives_up_leaves_the_line_in_step(wire: Wire, client: redis.Redis) -> None:
    client.set("x", "1")
    given_up = asyncio.ensure_future(wire.call(["GET", "x"]))
    await asyncio.sleep(0)  # queued
    given_up.cancel()
    with pytest.raises(asyncio.CancelledError):
        await given_up
    assert await wire.call(["INCR", "x"]) == [2]  # its own answer, not the one the cancelled request was owed


async def test_a_store_slower_than_the_timeout_breaks_the_line(
    wire: Wire, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire_module, "TIMEOUT", 0.05)
    slow = asyncio.ensure_future(wire.call(["BLPOP", "nothing", 1]))  # Redis answers in a second
    await asyncio.sleep(0)
    behind = asyncio.ensure_future(wire.call(["GET", "x"]))
    gone = asyncio.ensure_future(wire.call(["GET", "x"]))
    await asyncio.sleep(0)
    gone.cancel()  # a request that gave up before the line broke: nothing is owed to it
    with pytest.raises(redis.TimeoutError):  # the line's watchdog: one timer per line, not one per round trip
        await slow
    with pytest.raises(redis.TimeoutError):  # the line broke under it
        await behind  # queued behind it on the same line
    client.set("x", "1")
    assert await wire.call(["GET", "x"]) == [b"1"]  # a new line


async def test_the_watchdog_times_the_oldest_answer_still_awaited(
    wire: Wire, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire_module, "TIMEOUT", 0.1)
    assert await wire.call(["GET", "x"]) == [None]  # answered at once: the line's watchdog finds nothing waiting
    await asyncio.sleep(0.15)
    assert await wire.call(["GET", "x"]) == [None]  # a new watchdog, for this one
    await asyncio.sleep(0.06)
    started = asyncio.get_running_loop().time()
    with pytest.raises(redis.TimeoutError):
        await wire.call(["BLPOP", "nothing", 1])  # queued late in the watchdog's span: timed from its own start
    assert asyncio.get_running_loop().time() - started >= 0.09


async def test_what_is_sent_without_waiting_is_checked_and_read_back(
    wire: Wire, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    client.set("x", "1")
    wire.send(["LPUSH", "x", "a"], ["LPUSH", "list", "a"])  # the first fails: nobody waits, so it is logged
    wire.send(["LPUSH", "list", "b"])
    assert await wire.call(["LRANGE", "list", 0, -1]) == [[b"b", b"a"]]  # behind them on the line: in order
    assert "a command sent without waiting failed: WRONGTYPE" in caplog.text


async def test_what_is_sent_while_the_store_is_down_is_logged_as_lost(
    redis_url: str, client: redis.Redis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = connect(redis_url)

    async def refused(connection: Connection) -> None:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(Connection, "connect", refused)
    wire.send(["LPUSH", "list", "a"])
    with pytest.raises(redis.ConnectionError, match="Connection refused"):
        await wire.call(["PING"])
    assert "commands sent without waiting may be lost: Connection refused" in caplog.text
    monkeypatch.undo()
    assert client.llen("list") == 0


def test_each_loop_has_a_line_of_its_own_and_closes_it_at_its_end(wire: Wire) -> None:
    async def use() -> list[Any]:
        answer = await wire.call(["PING"])
        await wire.close()  # closing this loop's line early is harmless: the next call opens another
        return answer + await wire.call(["PING"])

    assert asyncio.run(use()) == [b"PONG", b"PONG"]
    assert asyncio.run(use()) == [b"PONG", b"PONG"]  # a new loop: a new line
    assert not wire._lines  # each ended with its loop: neither loop is kept alive by the wire
    assert wire._recent is None


def test_loops_that_take_turns_keep_their_own_lines(wire: Wire) -> None:
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        for loop in (first, second):
            assert loop.run_until_complete(wire.call(["PING"])) == [b"PONG"]
        lines = dict(wire._lines)
        assert first.run_until_complete(wire.call(["PING"])) == [b"PONG"]  # after the second used the wire last
        assert wire._lines[first] is lines[first]
        assert len(wire._lines) == 2
    finally:
        for loop in (first, second):
            loop.run_until_complete(wire.close())
            loop.close()
    assert not wire._lines


async def test_a_request_whose_look_failed_fails_at_its_first_read(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, store, slots = _worker(connect(redis_url))

    async def refused(connection: Connection) -> None:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(Connection, "connect", refused)
    async with view.fresh("k"):
        with pytest.raises(StoreUnavailable, match=r"the shared store failed \(reading faults:\): Connection refused"):
            slots.get("faults")
        with pytest.raises(StoreUnavailable, match=r"failed \(transaction on \{morpheus-mock:k\}:record\)"):
            await store.transact("k", _to(EMPTY))
        assert contextvars.Context().run(slots.get, "faults") is None  # a read outside that request: the snapshot
    _, _, other = _worker(connect(redis_url))
    assert other.get("faults") is None  # another worker's slots: that request is not theirs
    assert slots.get("faults") is None  # that request ended: this worker reads its snapshot again
    with pytest.raises(StoreUnavailable, match=r"failed \(reading the admin state\): Connection refused"):
        await view.fresh()


async def test_a_request_cancelled_while_it_looks_leaves_nothing_behind(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, _, _ = _worker(connect(redis_url))
    looking = asyncio.Event()

    async def stuck(name: str | None) -> None:
        looking.set()
        await asyncio.Event().wait()

    async def request() -> None:
        async with view.fresh("k"):
            raise AssertionError("the look never ends")

    monkeypatch.setattr(view, "look", stuck)
    task = asyncio.create_task(request())
    await looking.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert view._open == {}  # the record is no longer counted as read ahead: this worker's writes of it are not kept


def test_every_session_request_costs_at_most_two_round_trips(
    redis_url: str, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24: the token with the key's record (two single-key commands, one round trip), then the
    compare-and-set script only if the record changes; the journal entry is sent without waiting. Before
    the view and the script a ping took 13 round trips, a model switch 20; before layout 3, every request
    took three and waited on Redis with the event loop blocked."""
    headers = {"Authorization": KEYS[0]}
    with TestClient(create_app(Config(keys=KEYS[:1], store=redis_url))) as http:

        def post(path: str, model: str | None = None) -> Callable[[], Any]:
            params = {} if model is None else {"model_id": model}
            body = None if model is None else {"sessionDuration": 3600}
            return lambda: http.post(path, params=params, json=body, headers=headers)

        post(MODEL, "mistral-31-24b")()  # the first request loads the admin hash
        client.config_resetstat()
        trips = Trips(monkeypatch)

        def of(request: Callable[[], Any]) -> tuple[int, int]:
            trips.calls = trips.sends = 0
            assert request().status_code == 200
            return trips.calls, trips.sends

        for _ in range(2):
            assert of(post(MODEL, "mistral-31-24b")) == (1, 1)  # R1 reuse: it only reads
            assert of(post(MODEL, "llama-3.3-70b")) == (2, 1)  # a switch
            assert of(post(PING)) == (1, 1)
            assert of(post(CLOSE)) == (2, 1)
            assert of(post(CLOSE)) == (1, 1)  # nothing to close: it only reads
            assert of(post(PING)) == (1, 1)
            assert of(post(MODEL, "mistral-31-24b")) == (2, 1)  # a new session
    commands = {name.removeprefix("cmdstat_") for name in client.info("commandstats")}
    # set and del run inside the script (Redis counts a script's commands too); no HGETALL, no MULTI
    assert commands == {"hget", "get", "evalsha", "set", "del", "lpush", "ltrim", "config|resetstat"}


def test_a_chat_costs_the_round_trips_of_its_session(
    redis_url: str, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat that reuses its key's session waits for one round trip (its look), one that opens a session for
    two: what the chain says of the session (`chain_error`) is read from what the request already knows."""
    headers = {"Authorization": KEYS[0]}
    body = {"model": "mistral-31-24b", "messages": [{"role": "user", "content": "hello"}]}
    with TestClient(create_app(Config(keys=KEYS[:1], store=redis_url))) as http:
        assert http.post(CHAT, json=body, headers=headers).status_code == 200  # loads the admin hash
        trips = Trips(monkeypatch)
        for opens in (False, True):
            if opens:
                assert http.post(CLOSE, headers=headers).status_code == 200
            trips.calls = 0
            assert http.post(CHAT, json=body, headers=headers).status_code == 200
            assert trips.calls == 1 + opens


def test_chat_s_automation_and_replies_live_in_the_store(redis_url: str, client: redis.Redis) -> None:
    """A reply queued and an automation setting changed through one app are what another app on the store uses."""
    config = Config(keys=KEYS[:1], admin=True, store=redis_url)
    with TestClient(create_app(config)) as first, TestClient(create_app(config)) as second:
        prefix = KEYS[0][:9]
        assert first.put(f"/__admin/keys/{prefix}/automation", json={"duration": 7200}).status_code == 200
        assert second.get(f"/__admin/keys/{prefix}/automation").json()["duration"] == 7200
        assert first.post("/__admin/replies", json={"content": "Paris."}).status_code in (200, 201)
        chat = second.post(
            "/api/v1/chat/completions",
            json={"model": "mistral-31-24b", "messages": [{"role": "user", "content": "?"}]},
            headers={"Authorization": KEYS[0]},
        )
        assert chat.status_code == 200, chat.text
        assert chat.json()["choices"][0]["message"]["content"] == "Paris."
        assert first.get("/__admin/replies").json()["replies"] == []
