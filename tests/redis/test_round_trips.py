"""`--store` in few round trips: a worker reads the admin state once per request while nobody changes it
(`RedisView`), and a transaction is a GET and one script (`swap`); every guarantee stays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.connection import Connection
from starlette.testclient import TestClient

from mockserver.config import Config
from mockserver.domain import Fault, FaultKind, FaultPlan, KeyRecord, Session, SessionKind
from mockserver.domain.store import EMPTY
from mockserver.store import StoreBusy
from mockserver.store.redis.clock import RedisClock
from mockserver.store.redis.codecs import FaultsCodec, encode_record
from mockserver.store.redis.slots import RedisSlots
from mockserver.store.redis.store import RedisStore
from mockserver.store.redis.transaction import ATTEMPTS
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import Wire
from mockserver.web.app import create_app
from tests.served import KEYS

SESSION = Session("0x" + "ab" * 32, "k", SessionKind.MODEL, "m", "m", 1.0, 2.0)
PING = "/api/v1/session/pingsession"


def _worker(client: redis.Redis) -> tuple[RedisView, FaultPlan]:
    view = RedisView(client)
    return view, FaultPlan(RedisSlots(client, "faults", FaultsCodec(), view=view))


def test_a_request_sees_the_admin_state_as_it_was_when_it_started(client: redis.Redis) -> None:
    view, plan = _worker(client)
    _, other = _worker(client)  # another worker on the same store
    other.arm(FaultKind.PING_DEAD, key="sk-AbC123")
    with view.fresh():
        assert len(plan.list()) == 1
        other.clear()  # renews the token; this request keeps what it read
        assert len(plan.list()) == 1
    assert plan.list() == ()  # outside a request every read asks Redis
    with view.fresh():  # the next request reads the new token, and the plan again
        assert plan.list() == ()
        assert repr(view) == "RedisView(1 kept)"


def test_a_worker_s_own_change_is_seen_at_once(client: redis.Redis) -> None:
    view, plan = _worker(client)
    plan.arm(FaultKind.PING_DEAD, key="sk-AbC123")
    with view.fresh():
        assert len(plan.list()) == 1
        plan.clear()
        assert plan.list() == ()
        assert plan.take(FaultKind.PING_DEAD, "sk-AbC123") is None


def test_a_value_read_while_the_token_moves_is_not_kept(client: redis.Redis) -> None:
    view, plan = _worker(client)
    _, other = _worker(client)
    other.arm(FaultKind.PING_DEAD, key="sk-AbC123")
    with view.fresh():
        other.arm(FaultKind.PING_DEAD, key="sk-XyZ789")  # after this request's look at the token
        assert len(plan.list()) == 2  # read now, under a newer token: returned, not kept
        other.clear()
        assert plan.list() == ()


def test_with_no_token_yet_a_request_reads_through_and_sets_one(client: redis.Redis) -> None:
    view, plan = _worker(client)
    with view.fresh():
        assert plan.list() == ()
        client.set("{morpheus-mock}:faults:faults", FaultsCodec().dumps(_armed(client)))  # written around the plan
        assert len(plan.list()) == 1
    token = client.get(view.generation)  # that request gave the store a first token
    with view.fresh():
        assert len(plan.list()) == 1
        client.delete("{morpheus-mock}:faults:faults")  # around the plan again: no new token, so it is not seen
        assert len(plan.list()) == 1
    assert token is not None
    assert client.get(view.generation) == token


def _armed(client: redis.Redis) -> tuple[Fault, ...]:
    plan = FaultPlan(RedisSlots(client, "faults", FaultsCodec(), namespace="elsewhere"))
    return (plan.arm(FaultKind.PING_DEAD, key="sk-AbC123"),)


def test_a_change_that_changes_nothing_writes_nothing(client: redis.Redis) -> None:
    view, plan = _worker(client)
    plan.arm(FaultKind.PING_DEAD, key="sk-AbC123")
    token = client.get(view.generation)
    assert plan.take(FaultKind.CREATE_FAIL, "sk-AbC123") is None  # armed, but nothing matches: no write
    assert client.get(view.generation) == token


def test_the_clock_offset_is_read_once_per_request_and_moves_every_worker(client: redis.Redis) -> None:
    view = RedisView(client)
    mine, theirs = RedisClock(client, source=lambda: 1000.0, view=view), RedisClock(client, source=lambda: 1000.0)
    theirs.advance(60)
    with view.fresh():
        assert mine.now() == 1060.0
        theirs.set(5000.0)
        assert mine.now() == 1060.0  # this request started before the move
    with view.fresh():
        assert mine.now() == 5000.0
        assert mine.advance(1) == 5001.0  # its own move: seen at once


def test_a_transaction_that_always_conflicts_ends_with_a_clear_error(client: redis.Redis) -> None:
    store, attempts = RedisStore(client), []

    def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        attempts.append(1)
        client.set(
            store.names.of_key("k", "record"), encode_record(KeyRecord(SESSION, synced_at=len(attempts)))
        )  # another worker
        return KeyRecord(SESSION), None  # a change, never the value another worker wrote

    with pytest.raises(
        StoreBusy, match=rf"\{{morpheus-mock:k\}}:record changed under every one of {ATTEMPTS} attempts"
    ):
        store.transact("k", change)
    assert len(attempts) == ATTEMPTS


def test_a_record_read_ahead_serves_the_first_try_and_a_stale_one_costs_one_more(client: redis.Redis) -> None:
    view = RedisView(client)
    store, decided = RedisStore(client, view=view), []

    def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        decided.append(current.active)
        return KeyRecord(SESSION), None

    with view.fresh("k"):
        store.transact("k", change)  # the record as the request found it: no GET
    client.delete(store.names.of_key("k", "record"))
    with view.fresh("k"):
        client.set(
            store.names.of_key("k", "record"), encode_record(KeyRecord(SESSION, synced_at=1.0))
        )  # another worker, meanwhile
        store.transact("k", change)
        assert view.ahead(store.names.of_key("k", "record")) is None  # used once
    assert decided == [None, None, SESSION]


def test_a_store_that_forgot_the_script_gets_it_again(client: redis.Redis) -> None:
    store = RedisStore(client)
    store.transact("k", lambda current: (KeyRecord(SESSION), None))
    client.script_flush()  # what a restarted redis-server has forgotten
    store.transact("k", lambda current: (EMPTY, None), lambda result: [SESSION])
    assert (store.active("k"), store.history()) == (None, (SESSION,))


MODEL = "/api/v1/session/modelsession"
CLOSE = "/api/v1/session/closesession"


class Trips:
    """Counts what one request sends to Redis: every write to a connection, and those nobody waits for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes = self.unawaited = 0
        send_packed, send = Connection.send_packed_command, Wire.send

        def counted(connection: Connection, *args: Any, **kwargs: Any) -> Any:
            self.writes += 1
            return send_packed(connection, *args, **kwargs)  # type: ignore[no-untyped-call]

        def unawaited(wire: Wire, *commands: Any) -> None:
            self.unawaited += 1
            send(wire, *commands)

        monkeypatch.setattr(Connection, "send_packed_command", counted)
        monkeypatch.setattr(Wire, "send", unawaited)

    def of(self, request: Callable[[], Any]) -> tuple[int, int]:
        """(round trips the request waited for, writes it did not wait for)."""
        self.writes = self.unawaited = 0
        assert request().status_code == 200
        return self.writes - self.unawaited, self.unawaited


def test_every_session_request_costs_at_most_two_round_trips(
    redis_url: str, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24: the token with the key's record (two GETs, one round trip), then the compare-and-set script
    only if the record changes; the journal entry is sent without waiting (its answer is read before the
    worker's next command). Before the view and the script a ping took 13 round trips, a model switch 20;
    before this, every request took three (the script ran for a ping too, and the journal waited)."""
    headers = {"Authorization": KEYS[0]}
    with TestClient(create_app(Config(keys=KEYS[:1], store=redis_url))) as http:

        def post(path: str, model: str | None = None) -> Callable[[], Any]:
            params = {} if model is None else {"model_id": model}
            body = None if model is None else {"sessionDuration": 3600}
            return lambda: http.post(path, params=params, json=body, headers=headers)

        post(MODEL, "mistral-31-24b")()  # the first request reads the keys, faults and clock once
        client.config_resetstat()
        trips = Trips(monkeypatch)
        for _ in range(2):
            assert trips.of(post(MODEL, "mistral-31-24b")) == (1, 1)  # R1 reuse: it only reads
            assert trips.of(post(MODEL, "llama-3.3-70b")) == (2, 1)  # a switch
            assert trips.of(post(PING)) == (1, 1)
            assert trips.of(post(CLOSE)) == (2, 1)
            assert trips.of(post(CLOSE)) == (1, 1)  # nothing to close: it only reads
            assert trips.of(post(PING)) == (1, 1)
            assert trips.of(post(MODEL, "mistral-31-24b")) == (2, 1)  # a new session
    commands = {name.removeprefix("cmdstat_") for name in client.info("commandstats")}
    assert commands == {"get", "evalsha", "set", "del", "lpush", "ltrim", "config|resetstat"}  # no MGET, no MULTI


def test_a_wire_whose_connection_broke_opens_a_new_one(client: redis.Redis) -> None:
    wire = Wire(client)
    assert wire.call(["SET", "x", "1"], ["GET", "x"]) == [b"OK", b"1"]
    client.client_kill_filter(_type="normal", skipme=True)  # the server drops every other connection
    with pytest.raises(redis.ConnectionError):
        wire.call(["GET", "x"])
    assert wire.call(["GET", "x"]) == [b"1"]
    assert repr(wire).startswith("Wire(")


def test_an_error_answer_leaves_the_wire_in_step(client: redis.Redis) -> None:
    wire = Wire(client)
    client.set("x", "1")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        wire.call(["LPUSH", "x", "a"], ["GET", "x"])  # the first fails, the second's answer is still read
    assert wire.call(["GET", "x"]) == [b"1"]


def test_what_is_sent_without_waiting_is_answered_before_the_next_command(
    client: redis.Redis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = Wire(client)
    client.set("x", "1")
    wire.send(["LPUSH", "x", "a"], ["LPUSH", "list", "a"])  # the first fails: nobody waits, so it is logged
    assert wire.call(["GET", "x"], ["LLEN", "list"]) == [b"1", 1]  # in step: its own answers, in order
    assert "a command sent without waiting failed: WRONGTYPE" in caplog.text
    wire.send(["LPUSH", "list", "b"])
    read, failures = Connection.read_response, [redis.ConnectionError("the connection broke")]

    def breaks_once(connection: Connection, *args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return read(connection, *args, **kwargs)

    monkeypatch.setattr(Connection, "read_response", breaks_once)
    assert wire.call(["LLEN", "list"]) == [2]  # on a new connection; what was sent may be lost, and is logged
    assert "commands sent without waiting may be lost: the connection broke" in caplog.text


def test_a_send_that_fails_drops_its_connection(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    wire = Wire(client)
    assert wire.call(["SET", "x", "1"]) == [b"OK"]
    original = Connection.send_packed_command

    def broken(connection: Connection, *args: Any, **kwargs: Any) -> None:
        raise redis.ConnectionError("the socket broke")

    monkeypatch.setattr(Connection, "send_packed_command", broken)
    with pytest.raises(redis.ConnectionError, match="the socket broke"):
        wire.send(["LPUSH", "list", "a"])
    monkeypatch.setattr(Connection, "send_packed_command", original)
    assert wire.call(["GET", "x"]) == [b"1"]


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
