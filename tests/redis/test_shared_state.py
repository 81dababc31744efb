"""The admin state in Redis: faults, keys, ids, journal and clock mean the same to every worker; bounds and
conflicts give clear errors, and every Redis failure leaves as a StoreError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from mockserver.config import Config
from mockserver.domain import (
    Automation,
    AutomationSettings,
    FaultKind,
    FaultPlan,
    IdSource,
    InvalidTime,
    JournalEntry,
    KeyRegistry,
    QueuedReply,
    ReplyQueue,
    Session,
    SessionKind,
    ToolCallReply,
)
from mockserver.store import StoreBusy, StoreUnavailable
from mockserver.store.redis.clock import RedisClock
from mockserver.store.redis.codecs import AutomationCodec, FaultsCodec, KeysCodec, RepliesCodec
from mockserver.store.redis.journal import RedisJournal
from mockserver.store.redis.slots import RedisCounter, RedisSlots
from mockserver.store.redis.store import RedisStore
from mockserver.store.redis.transaction import ATTEMPTS, optimistic
from mockserver.web.app import create_app
from tests.served import KEYS

DEAD = "redis://127.0.0.1:1/0"
ENTRY = JournalEntry(1.0, "POST", "/api/v1/session/pingsession", "", "sk-AbC123", "ping", 200)


def _plan(client: redis.Redis) -> FaultPlan:
    return FaultPlan(RedisSlots(client, "faults", FaultsCodec()))


def test_two_plans_on_one_store_are_one_plan(client: redis.Redis) -> None:
    first, second = _plan(client), _plan(client)
    first.arm(FaultKind.CREATE_FAIL, key="sk-AbC123", count=2, message="down")
    first.arm(FaultKind.LATENCY, seconds=0.5, operation="ping")
    assert second.list() == first.list()
    assert second.take(FaultKind.CREATE_FAIL, "sk-AbC123") is not None
    assert first.take(FaultKind.CREATE_FAIL, "sk-AbC123") is not None
    assert second.take(FaultKind.CREATE_FAIL, "sk-AbC123") is None  # two uses, across both
    assert first.take(FaultKind.PING_DEAD, "sk-AbC123") is None  # something armed, nothing matching
    assert second.latency("sk-AbC123", "ping") == 0.5
    assert first.clear() == 1
    assert (second.list(), second.latency("k", "ping")) == ((), 0.0)
    assert repr(second) == "FaultPlan(0 armed)"


def test_two_registries_on_one_store_are_one_registry(client: redis.Redis) -> None:
    first = KeyRegistry(keys=KEYS[:1], slots=RedisSlots(client, "keys", KeysCodec()))
    second = KeyRegistry(slots=RedisSlots(client, "keys", KeysCodec()))
    assert second.authenticate(f"Bearer {KEYS[0]}") == KEYS[0][:9]
    second.add(KEYS[1])
    assert first.prefixes() == tuple(sorted(key[:9] for key in KEYS[:2]))
    first.revoke(KEYS[0])
    assert second.describe()[[e["prefix"] for e in second.describe()].index(KEYS[0][:9])]["revoked"] is True
    assert len(first) == 2
    assert repr(RedisSlots(client, "keys", KeysCodec())) == "RedisSlots('{morpheus-mock}:keys:')"


def test_seeded_ids_are_distinct_across_sources_and_the_same_in_every_run(client: redis.Redis) -> None:
    first, second = IdSource(5, counter=RedisCounter(client)), IdSource(5, counter=RedisCounter(client))
    drawn = [first.session_id(), second.session_id(), first.tx_hash(), second.session_id()]
    assert len(set(drawn)) == 4
    client.flushdb()
    again = IdSource(5, counter=RedisCounter(client))
    assert [again.session_id() for _ in range(4)] == drawn


def test_the_journal_collects_every_writer_newest_first_and_capped(client: redis.Redis) -> None:
    first, second = RedisJournal(client, 3), RedisJournal(client, 3)
    for n in range(4):
        (first if n % 2 else second).record(ENTRY._replace(at=float(n)))
    assert [entry["at"] for entry in second.entries()] == [3.0, 2.0, 1.0]
    assert first.entries(key="sk-Other1") == []
    assert first.entries(limit=1)[0] == {**ENTRY._asdict(), "at": 3.0}
    assert (second.clear(), first.entries()) == (3, [])


def test_the_redis_clock_keeps_every_clock_s_bounds(client: redis.Redis) -> None:
    clock = RedisClock(client, source=lambda: 1000.0)
    clock.advance(60)
    moves: list[Callable[[], object]] = [
        lambda: clock.set(2.6e11),
        lambda: clock.advance(1e300),
        lambda: clock.set(float("nan")),
    ]
    for move in moves:
        with pytest.raises(InvalidTime, match="clock time must be between 0 and 253402300799"):
            move()
    assert clock.now() == 1060.0
    assert repr(clock) == "RedisClock('{morpheus-mock}:clock-offset')"


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


def test_a_transaction_that_always_conflicts_ends_with_a_clear_error(client: redis.Redis) -> None:
    attempts = []

    def decide(pipe: Any) -> tuple[Any, None]:
        attempts.append(1)
        client.set("contended", str(len(attempts)))  # another worker writes it every time
        return (lambda pipe: pipe.set("contended", "mine")), None

    with pytest.raises(StoreBusy, match=f"contended changed under every one of {ATTEMPTS} attempts; try again"):
        optimistic(client, ["contended"], decide)
    assert len(attempts) == ATTEMPTS


def test_every_redis_failure_is_a_store_error() -> None:
    client = redis.Redis.from_url(DEAD, socket_connect_timeout=1)
    store, slots = RedisStore(client), RedisSlots(client, "faults", FaultsCodec())
    session = Session("0x" + "ab" * 32, "k", SessionKind.MODEL, "m", "m", 1.0, 2.0)
    failing: list[Callable[[], object]] = [
        lambda: store.transact("k", lambda current: (current, None)),
        lambda: store.active("k"),
        lambda: store.keys(),
        lambda: store.reset(),
        lambda: store.history(),
        lambda: store.record_ended(session),
        lambda: slots.get("faults"),
        lambda: slots.items(),
        lambda: RedisCounter(client).next(),
        lambda: RedisJournal(client, 3).record(ENTRY),
        lambda: RedisJournal(client, 3).entries(),
        lambda: RedisJournal(client, 3).clear(),
        lambda: RedisClock(client).now(),
        lambda: RedisClock(client).set(5.0),
    ]
    for call in failing:
        with pytest.raises(StoreUnavailable, match="the shared store failed"):
            call()


def test_an_app_whose_store_stops_answers_in_the_gateway_s_shape(
    redis_url: str, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Config(keys=KEYS[:1], admin=True, store=redis_url))
    state = app.state.mock
    state.book.store.client.connection_pool = redis.ConnectionPool.from_url(DEAD, socket_connect_timeout=1)
    with TestClient(app) as http:
        ping = http.post("/api/v1/session/pingsession", headers={"Authorization": KEYS[0]})
        assert (ping.status_code, ping.headers["content-type"]) == (500, "application/json")
        assert ping.json()["detail"].startswith(
            "Unexpected error: the shared store failed (reading {morpheus-mock}:keys:)"
        )
        admin = http.get("/__admin/faults")
        assert (admin.status_code, admin.headers["content-type"]) == (503, "application/problem+json")
        assert admin.json()["detail"].endswith("the mock answers again once the store does")
    assert "request not journaled: the shared store failed" in caplog.text


def test_automation_and_replies_are_shared_by_every_worker(client: redis.Redis) -> None:
    first = AutomationSettings(True, RedisSlots(client, "automation", AutomationCodec()))
    second = AutomationSettings(True, RedisSlots(client, "automation", AutomationCodec()))
    first.change("sk-AbC123", enabled=False, duration=600)
    assert second.setting("sk-AbC123") == Automation(enabled=False, duration=600)
    queue_one, queue_two = (ReplyQueue(RedisSlots(client, "replies", RepliesCodec())) for _ in range(2))
    queued = queue_one.push(QueuedReply(content="hi", tool_calls=(ToolCallReply("f", "{}"),), chunk_delay=0.5))
    assert queue_two.listed() == (queued,)
    assert queue_two.take("sk-AbC123") == queued
    assert queue_one.take("sk-AbC123") is None  # used once, across both
