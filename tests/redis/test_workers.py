"""`--store redis://...`: several worker processes act as one gateway (R8 across workers), sessions survive a
restart of the mock, and the admin clock moves every worker's expiry (R6)."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from starlette.testclient import TestClient

from mockserver.config import Config
from mockserver.serving import worker_app
from mockserver.store.redis.clock import RedisClock
from mockserver.store.redis.store import RedisStore
from mockserver.store.redis.wire import connect
from mockserver.web.app import ARGV_VARIABLE, app_from_environment, create_app
from mockserver.web.errors import WebError
from tests.served import KEYS, Served, serving

MODEL = "/api/v1/session/modelsession"


@pytest.fixture
def workers(redis_url: str, client: Any) -> Iterator[Served]:
    with serving("--workers", "2", "--store", redis_url, "--log-level", "warning", "--chain-latency", "0.3") as mock:
        yield mock


def _create(served: Served, model: str) -> str:
    response = served.post(MODEL, params={"model_id": model}, json={"sessionDuration": 3600})
    assert response.status_code == 200, response.text
    return str(response.json()["session_id"])


def test_an_in_process_app_keeps_its_sessions_and_clock_in_redis(redis_url: str, client: Any) -> None:
    app = create_app(Config(keys=KEYS, admin=True, store=redis_url))
    state = app.state.mock
    assert isinstance(state.book.store, RedisStore)
    assert isinstance(state.clock, RedisClock)
    with TestClient(app) as http:
        http.put("/__admin/clock", json={"now": 1_767_225_601})  # a second after a sync pass (every 60 s)
        opened = http.post(MODEL, params={"model_id": "m"}, json={}, headers={"Authorization": KEYS[0]}).json()
        record = asyncio.run(RedisStore(connect(redis_url)).record(KEYS[0][:9]))
        assert record.active is not None
        assert record.active.session_id == opened["session_id"]
        http.post("/__admin/clock/advance", json={"seconds": 3601})
        assert (
            http.post("/api/v1/session/pingsession", headers={"Authorization": KEYS[0]}).json()["status"] == "expired"
        )


def test_an_unreachable_store_stops_the_start() -> None:
    with pytest.raises(WebError, match=r"cannot use the store redis://127\.0\.0\.1:1/0"):
        create_app(Config(store="redis://127.0.0.1:1/0"))


def test_r8_holds_across_two_worker_processes(workers: Served) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        same = set(pool.map(lambda _: _create(workers, "mistral-31-24b"), range(64)))
    assert len(same) == 1, f"64 parallel creates on one model over two workers gave {len(same)} sessions"
    with ThreadPoolExecutor(max_workers=16) as pool:
        handed_out = set(pool.map(lambda n: _create(workers, ("mistral-31-24b", "llama-3.3-70b")[n % 2]), range(64)))
    active = requests.get(f"{workers.url}/__admin/state/{KEYS[0][:9]}", timeout=5).json()["session"]
    ended = [s["session_id"] for s in requests.get(f"{workers.url}/__admin/history", timeout=5).json()["sessions"]]
    assert len(ended) == len(set(ended)), "a session ended twice"
    assert active["session_id"] not in ended
    assert handed_out | same <= set(ended) | {active["session_id"]}
    workers.process.send_signal(signal.SIGTERM)
    assert workers.process.wait(timeout=20) == 0


def test_parallel_bids_collide_across_two_worker_processes(workers: Served) -> None:
    """observed-v1.14.0.md section 2: one bid wins, the others meet its row (UniqueViolation), across processes."""
    params, body, start = {"bid_id": "0x" + "b1" * 32}, {"sessionDuration": 3600}, threading.Barrier(8)

    def bid(_: int) -> requests.Response:
        start.wait()  # all at once
        return workers.post("/api/v1/session/bidsession", params=params, json=body)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(bid, range(8)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [500] * 7, [answer.text[:120] for answer in answers]
    assert all("UniqueViolationError" in answer.text for answer in answers if answer.status_code == 500)
    (winner,) = [answer.json()["session_id"] for answer in answers if answer.status_code == 200]
    state = requests.get(f"{workers.url}/__admin/state/{KEYS[0][:9]}", timeout=5).json()
    assert state["session"]["session_id"] == winner
    assert sum(not entry["in_gateway"] for entry in state["chain"]) == 7


def _admin(served: Served, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, f"{served.url}/__admin{path}", timeout=30, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def test_a_fault_armed_once_is_used_once_across_two_workers(workers: Served) -> None:
    _admin(workers, "POST", "/faults", json={"kind": "create_fail", "count": 1})
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda n: workers.post(MODEL, params={"model_id": ("mistral-31-24b", "llama-3.3-70b")[n % 2]}, json={}),
                range(60),
            )
        )
    failed = [answer.json()["detail"] for answer in answers if answer.status_code == 500]
    # The fault fails one switch; a later create on the old session's model may then reuse a session the
    # failed switch closed on chain and fail its verification (observed-v1.14.0.md 1.1): that is no fault.
    assert len([detail for detail in failed if "Failed to create session" in detail]) == 1, failed
    assert all("Failed to create session" in d or "not valid in proxy router" in d for d in failed), failed
    assert _admin(workers, "GET", "/faults") == {"faults": []}
    journal = _admin(workers, "GET", "/journal", params={"key": KEYS[0][:9]})["entries"]
    statuses = sorted(answer.status_code for answer in answers)
    assert sorted(entry["status"] for entry in journal) == statuses  # every worker's requests
    opened = {answer.json()["session_id"] for answer in answers if answer.status_code == 200}
    ended = {s["session_id"] for s in _admin(workers, "GET", "/history")["sessions"]}
    active = _admin(workers, "GET", f"/state/{KEYS[0][:9]}")["session"]["session_id"]
    assert opened <= ended | {active}


def test_two_mocks_on_one_store_share_every_admin_call(redis_url: str, client: Any) -> None:
    new_key = "sk-Shared." + "0123456789abcdef" * 4
    common = ("--store", redis_url, "--seed", "9", "--log-level", "warning")
    with serving(*common) as first, serving(*common) as second:
        assert _admin(first, "POST", "/keys", json={"key": new_key}) == {"prefix": new_key[:9]}
        assert second.post(MODEL, key=new_key, params={"model_id": "m"}, json={}).status_code == 200
        _admin(second, "POST", f"/keys/{new_key[:9]}/revoke")
        assert first.post("/api/v1/session/pingsession", key=new_key).status_code == 401
        _admin(first, "POST", "/faults", json={"kind": "ping_dead", "key": KEYS[0][:9], "count": 1})
        opened = _create(first, "mistral-31-24b")
        assert second.post("/api/v1/session/pingsession").json()["status"] == "dead"
        assert _admin(first, "GET", "/faults") == {"faults": []}
        assert _create(second, "mistral-31-24b") != opened  # seeded, and still distinct across the two
        moved = _admin(second, "POST", "/clock/advance", json={"seconds": 7200})["now"]
        assert _admin(first, "GET", "/clock")["now"] == pytest.approx(moved, abs=5)
        # Past its expiry by more than a minute: the gateway's sync has retired it (observed-v1.14.0.md 1.5).
        assert first.post("/api/v1/session/pingsession").json()["status"] == "no_session"
        paths = [entry["path"] for entry in _admin(second, "GET", "/journal")["entries"]]
        assert paths.count("/api/v1/session/pingsession") == 3  # both mocks' pings, in one journal
        assert _admin(first, "DELETE", "/journal")["cleared"] == len(paths) + 1
        assert [entry["path"] for entry in _admin(second, "GET", "/journal")["entries"]] == ["/__admin/journal"]


def test_sessions_survive_a_restart_of_the_mock(redis_url: str, client: Any) -> None:
    with serving("--store", redis_url, "--log-level", "warning") as first:
        opened = _create(first, "mistral-31-24b")
    with serving("--store", redis_url, "--log-level", "warning") as second:
        ping = second.post("/api/v1/session/pingsession").json()
        assert (ping["status"], ping["session_id"]) == ("alive", opened)
        assert _create(second, "mistral-31-24b") == opened  # R1 across the restart


def test_a_worker_builds_its_app_from_the_arguments_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ARGV_VARIABLE, json.dumps(["--key", KEYS[0], "--seed", "3"]))
    app = app_from_environment()
    assert app.state.mock.config.keys == (KEYS[0],)


def test_a_worker_app_is_frozen_out_of_the_collectors_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's factory for `--workers N` builds the app, then freezes what start-up built (gc.freeze): a full
    collection no longer walks the spec and its validators (the served p99's longest pause)."""
    monkeypatch.setenv(ARGV_VARIABLE, json.dumps(["--key", KEYS[0]]))
    try:
        app = worker_app()
        assert app.state.mock.config.keys == (KEYS[0],)
        collected = {id(each) for each in gc.get_objects()}  # the generations a collection walks, not the frozen
        assert gc.get_freeze_count() > 0
        assert id(app) not in collected
        assert id(app.state.mock.spec) not in collected
    finally:
        gc.unfreeze()
