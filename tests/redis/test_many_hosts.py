"""Issue 24, many hosts: every name is in a hash tag, one API key's names share one slot, and no command the
mock sends touches two slots, so a Redis Cluster can hold the store. Proven on a redis-server in cluster
mode (one node owning every slot), which refuses any command or script whose names are in two slots."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis
from redis.crc import key_slot
from starlette.testclient import TestClient

from mockserver.config import Config
from mockserver.domain import JournalEntry, KeyRecord, Session, SessionKind
from mockserver.domain.store import EMPTY
from mockserver.store import StoreUnavailable
from mockserver.store.redis.clock import RedisClock
from mockserver.store.redis.codecs import FaultsCodec, encode_record
from mockserver.store.redis.journal import RedisJournal
from mockserver.store.redis.slots import RedisCounter, RedisSlots
from mockserver.store.redis.store import RedisStore
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import LAYOUT, Names, connect
from mockserver.web.app import create_app
from tests.redis.conftest import free_port
from tests.served import KEYS

SESSION = "/api/v1/session"
SLOTS = 16384


@pytest.fixture
def cluster_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server in cluster mode that owns every slot: cross-slot commands fail there with CROSSSLOT."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (`make test` and .ci/run install the Debian package)")
    port = free_port()
    flags = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    cluster = ["--cluster-enabled", "yes", "--cluster-port", str(free_port())]  # not port + 10000: may be > 65535
    server = subprocess.Popen([binary, *flags, *cluster], stdout=subprocess.DEVNULL)
    try:
        node = _started(redis.Redis(host="127.0.0.1", port=port))
        node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, SLOTS - 1)  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):  # type: ignore[no-untyped-call]
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _started(node: redis.Redis) -> redis.Redis:
    deadline = time.monotonic() + 10
    while True:
        try:
            node.ping()
            return node
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)


def test_one_key_s_names_share_a_slot_and_the_admin_state_shares_another() -> None:
    names = Names()
    for key in ("sk-AbC123", "sk-XyZ789", "sk-Other1"):
        assert key_slot(names.of_key(key, "record").encode()) == key_slot(names.of_key(key, "history").encode())
    shared = (names.admin, names.shared("journal"), names.shared("ids"), names.shared("layout"))
    assert len({key_slot(name.encode()) for name in shared}) == 1  # the admin hash holds every admin field
    assert names.key_of(names.of_key("sk-AbC123", "record").encode(), "record") == "sk-AbC123"


class Sent:
    """Every command the mock sends to Redis on its asyncio connections, as its words."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commands: list[tuple[Any, ...]] = []
        pack_command = hiredis.pack_command

        def packed(command: tuple[Any, ...]) -> bytes:
            self.commands.append(command)
            packed_bytes: bytes = pack_command(command)
            return packed_bytes

        monkeypatch.setattr(hiredis, "pack_command", packed)

    def slots(self) -> list[set[int]]:
        """The slots of the names of each command that names several (MGET, DEL, a script's KEYS)."""
        named = [_names(command) for command in self.commands]
        return [{key_slot(str(name).encode()) for name in names} for names in named if len(names) > 1]


def _names(command: tuple[Any, ...]) -> Sequence[Any]:
    word = str(command[0]).upper()
    if word in ("MGET", "DEL", "EXISTS"):
        return command[1:]
    if word in ("EVAL", "EVALSHA"):
        return command[3 : 3 + int(command[2])]
    return ()


def test_the_mock_runs_on_a_cluster_node_and_no_command_spans_two_slots(
    cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = Sent(monkeypatch)
    other = "sk-Shared." + "0123456789abcdef" * 4
    with TestClient(create_app(Config(keys=KEYS[:2], admin=True, store=cluster_url))) as http:
        statuses = []
        for key in (KEYS[0], KEYS[1]):
            headers = {"Authorization": key}
            for model in ("mistral-31-24b", "llama-3.3-70b", "mistral-31-24b"):
                statuses.append(
                    http.post(f"{SESSION}/modelsession", params={"model_id": model}, json={}, headers=headers)
                )
            statuses.append(http.post(f"{SESSION}/pingsession", headers=headers))
            chat = {"model": "mistral-31-24b", "messages": [{"role": "user", "content": "?"}]}
            statuses.append(http.post("/api/v1/chat/completions", json=chat, headers=headers))
            statuses.append(http.post(f"{SESSION}/closesession", headers=headers))
        statuses += [
            http.post("/__admin/faults", json={"kind": "ping_dead", "count": 1}),
            http.post("/__admin/clock/advance", json={"seconds": 120}),
            http.post("/__admin/keys", json={"key": other}),
            http.put(f"/__admin/keys/{KEYS[0][:9]}/automation", json={"duration": 7200}),
            http.post("/__admin/replies", json={"content": "Paris."}),
            http.post(f"{SESSION}/modelsession", params={"model_id": "m"}, json={}, headers={"Authorization": other}),
            http.get("/__admin/history"),
            http.get("/__admin/state"),
            http.delete(f"/__admin/state/{KEYS[0][:9]}"),
            http.delete("/__admin/state"),
            http.get("/__admin/journal"),
            http.delete("/__admin/journal"),
        ]
    assert [answer.status_code for answer in statuses if answer.status_code >= 300] == []
    assert sent.slots(), "the run sent commands with several names"
    assert all(len(slots) == 1 for slots in sent.slots()), sent.slots()


def test_every_store_class_runs_on_a_cluster_node(cluster_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's own calls, one of each (the app's are above): the cluster node refuses any that spans two slots."""
    sent = Sent(monkeypatch)
    wire = connect(cluster_url)
    view = RedisView(wire)
    store, clock = RedisStore(wire, view=view), RedisClock(wire, view=view)
    faults, journal = RedisSlots(wire, "faults", FaultsCodec(), view=view), RedisJournal(wire, 10)
    session = Session("0x" + "ab" * 32, "k", SessionKind.MODEL, "m", "m", 1.0, 2.0)

    async def change(current: KeyRecord) -> tuple[KeyRecord, Session]:
        return (EMPTY if current.active else KeyRecord(session)), session

    async def run() -> None:
        for key in ("k", "other"):
            async with view.fresh(key):
                await store.transact(key, change, lambda ended: [ended])
                await store.transact(key, change, lambda ended: [ended])
        await faults.update("faults", lambda now: ((), None))
        await clock.advance(60)
        journal.record(JournalEntry(1.0, "POST", "/", "", "k", None, 200))
        assert len(await journal.entries()) == 1
        assert await RedisCounter(wire).next() == 0
        assert (await store.keys(), len(await store.history()), await faults.items()) == ((), 4, [("faults", ())])
        await store.reset("k")
        await store.reset()
        await journal.clear()

    asyncio.run(run())
    assert all(len(slots) == 1 for slots in sent.slots()), sent.slots()


def test_two_workers_take_turns_with_a_key_on_a_cluster_node(cluster_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker waiting for a key's turn is handed it (a PUBLISH from the holder's script, heard on its channel)
    on a cluster node, and every script still names one slot."""
    sent = Sent(monkeypatch)
    holder, waiter = RedisStore(connect(cluster_url)), RedisStore(connect(cluster_url))
    heard: list[bytes] = []
    handle = waiter.hands.handle

    def hearing(message: bytes) -> None:
        heard.append(message)
        handle(message)

    waiter.hands.handle = hearing
    name = holder.names.of_key("k", "record")
    session = Session("0x" + "ab" * 32, "k", SessionKind.MODEL, "m", "m", 1.0, 2.0)

    async def change(current: KeyRecord) -> tuple[KeyRecord, None]:
        return KeyRecord(session, synced_at=current.synced_at + 1), None

    async def turns() -> KeyRecord:
        node = redis.Redis.from_url(cluster_url)
        node.set(holder.names.of_key("k", "turn"), holder.worker, px=5_000)  # the holder met a conflict
        assert await waiter.hands.listening()
        waiting = asyncio.create_task(waiter.transact("k", change))
        while (queue := waiter._queues.get((asyncio.get_running_loop(), name))) is None or queue.hand is None:
            await asyncio.sleep(0.001)  # refused: it waits next
        await holder.transact("k", change)  # the holder writes and hands the turn on
        await waiting
        node.close()
        return await holder.record("k")

    assert asyncio.run(turns()).synced_at == 2
    assert heard == [name.encode() + b"\n1" + encode_record(KeyRecord(session, synced_at=1.0))]
    assert all(len(slots) == 1 for slots in sent.slots()), sent.slots()


def test_a_store_in_layout_1_is_reset_at_connect_and_says_so(
    redis_url: str, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    client.flushdb()
    client.set("morpheus-mock:active:sk-AbC123", "{}")
    client.rpush("morpheus-mock:history", "[]")
    client.set("elsewhere:active:k", "{}")  # another namespace's: not the mock's
    connect(redis_url)
    assert "held 2 names of layout 1: reset to layout 3" in caplog.text
    assert sorted(client.keys()) == [b"elsewhere:active:k", b"{morpheus-mock}:layout"]
    assert client.get(Names().shared("layout")) == LAYOUT.encode()
    caplog.clear()
    connect(redis_url)  # marked: nothing to look for
    assert caplog.text == ""


def test_a_store_in_layout_2_is_reset_at_connect_and_says_so(
    redis_url: str, client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    names = Names()
    client.set(names.shared("layout"), "2")
    for name in (names.shared("generation"), names.shared("faults:faults"), names.of_key("sk-AbC123", "record")):
        client.set(name, "[]")
    client.set("elsewhere:active:k", "{}")
    connect(redis_url)
    assert "held 4 names of layout 2: reset to layout 3" in caplog.text  # its marker among them
    assert sorted(client.keys()) == [b"elsewhere:active:k", b"{morpheus-mock}:layout"]
    assert client.get(names.shared("layout")) == LAYOUT.encode()


def test_a_store_of_a_newer_layout_is_left_alone(redis_url: str, client: redis.Redis) -> None:
    marker = Names().shared("layout")
    client.set(marker, "4")
    client.set("morpheus-mock:active:k", "{}")
    try:
        with pytest.raises(StoreUnavailable, match=r"redis://.*: it holds layout 4, this mock reads 3"):
            connect(redis_url)
        assert client.get("morpheus-mock:active:k") == b"{}"
    finally:
        client.delete(marker)  # the next test's `client` connects to this server
