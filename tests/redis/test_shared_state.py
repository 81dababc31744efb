"""The admin state in Redis: faults, keys, ids, journal and clock mean the same to every worker; conflicts
give clear errors, and every Redis failure leaves as a StoreError."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from mockserver.config import Config
from mockserver.domain import (
    ApiKey,
    Automation,
    Fault,
    FaultKind,
    JournalEntry,
    KeyRecord,
    QueuedReply,
    ToolCallReply,
)
from mockserver.store import StoreUnavailable
from mockserver.store.assembly import shared_state
from mockserver.store.redis.clock import RedisClock
from mockserver.store.redis.codecs import AutomationCodec, FaultsCodec, KeysCodec, RepliesCodec
from mockserver.store.redis.journal import RedisJournal
from mockserver.store.redis.slots import RedisCounter, RedisSlots
from mockserver.store.redis.store import RedisStore
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import Wire, connect
from mockserver.web.app import create_app
from tests.served import KEYS

pytestmark = pytest.mark.anyio

DEAD = "redis://127.0.0.1:1/0"
ENTRY = JournalEntry(1.0, "POST", "/api/v1/session/pingsession", "", "sk-AbC123", "ping", 200)


def _slots(wire: Wire, kind: str, codec: Any, view: RedisView | None = None) -> RedisSlots[Any]:
    return RedisSlots(wire, kind, codec, view=view)


async def test_a_fault_armed_once_is_taken_once_across_workers(redis_url: str, wire: Wire) -> None:
    """Two workers (their own wires and views) race to use a fault armed for three uses: three uses in all."""
    first, second = _slots(wire, "faults", FaultsCodec()), _slots(connect(redis_url), "faults", FaultsCodec())
    armed = Fault(FaultKind.CREATE_FAIL, key="sk-AbC123", remaining=3, message="down")
    await first.update("faults", lambda now: ((armed,), None))

    def take(now: tuple[Fault, ...] | None) -> tuple[tuple[Fault, ...] | None, bool]:
        if not now:
            return now, False
        (fault,) = now
        left = (fault.remaining or 0) - 1
        return ((replace(fault, remaining=left),) if left else None), True

    taken = await asyncio.gather(*(slots.update("faults", take) for _ in range(5) for slots in (first, second)))
    assert taken.count(True) == 3
    assert await second.items() == []
    assert first.get("faults") is None


async def test_two_workers_share_every_slot_kind(redis_url: str, wire: Wire) -> None:
    mine, theirs = RedisView(wire), RedisView(connect(redis_url))
    values: list[tuple[str, Any, Any]] = [
        ("keys", KeysCodec(), (ApiKey("sk-AbC123", "hash"),)),
        ("automation", AutomationCodec(), Automation(enabled=False, duration=600)),
        (
            "replies",
            RepliesCodec(),
            (QueuedReply(content="hi", tool_calls=(ToolCallReply("f", "{}"),), chunk_delay=0.5),),
        ),
    ]
    for kind, codec, value in values:

        def put(now: Any, value: Any = value) -> tuple[Any, None]:
            return value, None

        await _slots(wire, kind, codec, mine).update("sk-AbC123", put)
    await theirs.fresh()
    for kind, codec, value in values:
        slots = _slots(wire, kind, codec, theirs)
        assert slots.get("sk-AbC123") == value
        assert slots.get("sk-AbC123") is slots.get("sk-AbC123")  # decoded once while it stays the same
        assert await slots.items() == [("sk-AbC123", value)]
    assert repr(_slots(wire, "keys", KeysCodec())) == "RedisSlots('{morpheus-mock}:admin', 'keys:')"


async def test_seeded_ids_are_drawn_from_one_counter(redis_url: str, wire: Wire, client: redis.Redis) -> None:
    first, second = RedisCounter(wire), RedisCounter(connect(redis_url))
    assert [await first.next(), await second.next(), await first.next()] == [0, 1, 2]
    client.flushdb()
    assert await second.next() == 0


async def test_the_journal_collects_every_writer_newest_first_and_capped(redis_url: str, wire: Wire) -> None:
    first, second = RedisJournal(wire, 3), RedisJournal(connect(redis_url), 3)
    for n in range(4):
        journal = first if n % 2 else second
        journal.record(ENTRY._replace(at=float(n)))
        await journal.entries()  # two workers' entries: in the order Redis got them
    assert [entry["at"] for entry in await second.entries()] == [3.0, 2.0, 1.0]
    assert await first.entries(key="sk-Other1") == []
    assert (await first.entries(limit=1))[0] == {**ENTRY._asdict(), "at": 3.0}
    first.record(ENTRY)
    assert (await first.clear(), await second.entries()) == (3, [])  # a worker's own entry is written first


async def test_the_assembly_builds_one_worker_s_pieces_on_one_view(redis_url: str, wire: Wire) -> None:
    shared = shared_state(Config(store=redis_url))
    assert isinstance(shared.store, RedisStore)
    assert shared.faults.view is shared.clock.view is shared.store.view is shared.view  # type: ignore[attr-defined]
    local = shared_state(Config()).view
    async with local.fresh("sk-AbC123"):
        assert local.reads_ahead is False


async def _look(wire: Wire) -> None:
    await RedisView(wire).fresh()


async def test_every_redis_failure_is_a_store_error() -> None:
    wire = Wire(DEAD)
    store, slots = RedisStore(wire), _slots(wire, "faults", FaultsCodec())

    async def unchanged(record: KeyRecord) -> tuple[KeyRecord, None]:
        return record, None

    failing: list[Callable[[], Awaitable[object]]] = [
        lambda: store.transact("k", unchanged),
        lambda: store.record("k"),
        lambda: store.keys(),
        lambda: store.reset(),
        lambda: store.history(),
        lambda: slots.update("faults", lambda now: ((), None)),
        lambda: slots.items(),
        lambda: RedisCounter(wire).next(),
        lambda: RedisJournal(wire, 3).entries(),
        lambda: RedisJournal(wire, 3).clear(),
        lambda: RedisClock(wire).set(5.0),
        lambda: RedisClock(wire).advance(5.0),
        lambda: _look(wire),
    ]
    for call in failing:
        with pytest.raises(StoreUnavailable, match="the shared store failed"):
            await call()


def test_a_reset_keeps_the_clock_and_the_admin_state(redis_url: str, client: redis.Redis) -> None:
    with TestClient(create_app(Config(keys=KEYS[:1], admin=True, store=redis_url))) as http:
        moved = http.post("/__admin/clock/advance", json={"seconds": 86_400}).json()["now"]
        http.post("/__admin/faults", json={"kind": "ping_dead"})
        http.post("/api/v1/session/modelsession", params={"model_id": "m"}, json={}, headers={"Authorization": KEYS[0]})
        assert http.delete("/__admin/state").json() == {"reset": "all"}
        assert http.get("/__admin/clock").json()["now"] == pytest.approx(moved, abs=5)
        assert http.get("/__admin/state").json()["keys"] == []
        assert len(http.get("/__admin/faults").json()["faults"]) == 1
        oldest = http.get("/__admin/journal").json()["entries"][-1]
        assert (oldest["method"], oldest["path"]) == ("DELETE", "/__admin/state")  # the reset cleared the journal


def test_an_app_whose_store_stops_answers_in_the_gateway_s_shape(
    redis_url: str, client: redis.Redis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(Config(keys=KEYS[:1], admin=True, store=redis_url))
    wire = app.state.mock.book.store.wire
    monkeypatch.setattr(wire, "_connection_kwargs", Wire(DEAD)._connection_kwargs)  # no connection is open yet
    with TestClient(app) as http:
        ping = http.post("/api/v1/session/pingsession", headers={"Authorization": KEYS[0]})
        assert (ping.status_code, ping.headers["content-type"]) == (500, "application/json")
        assert ping.json()["detail"].startswith(
            "Unexpected error: the shared store failed (reading keys:): Error 111 connecting to 127.0.0.1:1"
        )
        admin = http.get("/__admin/faults")
        assert (admin.status_code, admin.headers["content-type"]) == (503, "application/problem+json")
        assert admin.json()["detail"].endswith("the mock answers again once the store does")
    assert "request not journaled: the shared store failed" in caplog.text  # the answer went out; its entry is lost
