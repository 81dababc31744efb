"""Redis stops mid-run and comes back: the mock answers in the gateway's shape meanwhile (never a hang nor a
traceback), serves again once Redis does, and no session is lost or doubled."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mockserver.domain import KeyRecord, Session
from mockserver.store.redis.store import RedisStore
from mockserver.store.redis.wire import connect
from tests.redis.conftest import free_port
from tests.served import KEYS, Served, serving

MODELS = ("mistral-31-24b", "llama-3.3-70b")
SESSION = "/api/v1/session"


class Redis:
    """A redis-server on a loopback port that appends every write to disk, so a restart keeps the data."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "redis-server"
        flags = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", ""]
        self.process = subprocess.Popen(
            [binary, *flags, "--appendonly", "yes", "--appendfsync", "always"], stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                connect(self.url)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis flushes its append-only file and exits
            self.process.wait(timeout=10)


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (`make test` and .ci/run install the Debian package)")
    server = Redis(tmp_path)
    server.start()
    yield server
    server.stop()


class Load:
    """Threads that open, switch and close sessions on their own key and keep every answer."""

    def __init__(self, served: Served, keys: tuple[str, ...]) -> None:
        self.served, self.keys = served, keys
        self.opened: set[str] = set()
        self.answers: list[tuple[int, str, float]] = []  # status, content type, seconds
        self.running = True
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._drive, args=(key,)) for key in keys]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        for thread in self.threads:
            thread.join(timeout=30)

    def _drive(self, key: str) -> None:
        step = 0
        while self.running:
            step += 1
            started = time.monotonic()
            if step % 4 == 0:
                response = self.served.post(f"{SESSION}/closesession", key=key)
            else:
                params = {"model_id": MODELS[step % 2]}
                response = self.served.post(f"{SESSION}/modelsession", key=key, params=params, json={})
            with self.lock:
                self.answers.append(
                    (response.status_code, response.headers["content-type"], time.monotonic() - started)
                )
                if response.status_code == 200 and step % 4:
                    self.opened.add(response.json()["session_id"])

    def statuses(self) -> set[int]:
        with self.lock:
            return {status for status, _, _ in self.answers}


def _wait_for(condition: object, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_redis_stopping_and_restarting_under_load_loses_no_session(durable_redis: Redis) -> None:
    keys = tuple(KEYS[:3])
    flags = ("--store", durable_redis.url, "--history-size", "100000", "--log-level", "error")
    with serving(*flags, keys=keys) as served, Load(served, keys) as load:
        _wait_for(lambda: len(load.opened) >= 30)
        durable_redis.stop()
        down = served.post(f"{SESSION}/pingsession")
        assert down.status_code == 500
        assert down.json()["detail"].startswith("Unexpected error: the shared store failed")
        admin = requests.get(f"{served.url}/__admin/state", timeout=10)
        assert (admin.status_code, admin.headers["content-type"]) == (503, "application/problem+json")
        assert admin.json()["title"] == "Store unavailable"
        _wait_for(lambda: 500 in load.statuses())
        time.sleep(0.5)
        durable_redis.start()
        served_again = len(load.opened)
        _wait_for(lambda: len(load.opened) >= served_again + 30)
    assert load.statuses() == {200, 500}
    assert all(kind == "application/json" for _, kind, _ in load.answers)
    assert max(seconds for _, _, seconds in load.answers) < 6, "a request hung while the store was down"
    store = RedisStore(connect(durable_redis.url))  # read back from Redis itself

    async def read() -> tuple[tuple[Session, ...], list[KeyRecord]]:
        return await store.history(), [await store.record(key[:9]) for key in keys]

    history, records = asyncio.run(read())
    ended = [session.session_id for session in history]
    active = {record.active.session_id for record in records if record.active is not None}
    assert len(ended) == len(set(ended)), "a session ended twice"
    assert not active & set(ended), "a session is both active and ended"
    assert load.opened <= set(ended) | active, "a session a client was given is gone"
