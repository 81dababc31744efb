"""The mock fails the way v1.14.0 fails: every sequence of observed-v1.14.0.md sections 1-6, recorded answers out.

Each sequence runs against four targets: the in-process app and the served mock (`python -m mockserver`,
its own process), each with the memory store and with a real redis-server. One target per store and
kind is shared by the module; every sequence starts from a reset and a clock set one second after a
sync pass (so "expired before the next pass" is reachable, as the observations drove it).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.testclient import TestClient

from mockserver.config import Config, SelfCheck
from mockserver.web.app import create_app
from tests.fidelity import observed
from tests.fidelity.observed import PREFIX, SEQUENCES, Step
from tests.served import KEYS, serving

SESSION = "/api/v1/session"
KEY = KEYS[0]
ORPHAN = "sk-0rphan." + "ab" * 32
LEGACY = "sk-LeGacy"
START = 1_767_225_600.0 + 1  # one second after a sync pass (passes run at multiples of 60 s)
BID_BURST = 8
LATENCY = 0.3  # the chain's time to open a bid: wide enough for a burst of threads on a loaded machine

Send = Callable[..., tuple[int, dict[str, str], Any]]


def _keys_file(folder: str) -> Path:
    path = Path(folder) / "keys.txt"
    path.write_text(f"{KEY}\norphan {ORPHAN}\nlegacy {LEGACY}\n", encoding="utf-8")
    return path


def _in_process(store: str | None, keys_file: Path) -> contextlib.AbstractContextManager[Send]:
    config = Config(keys_file=keys_file, admin=True, self_check=SelfCheck.RAISE, store=store, chain_latency=LATENCY)
    app = create_app(config)

    @contextlib.contextmanager
    def target() -> Iterator[Send]:
        with TestClient(app) as client:

            def send(method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
                response = client.request(method, path, **kwargs)
                return response.status_code, dict(response.headers), response.json()

            yield send

    return target()


@contextlib.contextmanager
def _served(store: str | None, keys_file: Path) -> Iterator[Send]:
    extra = ["--keys", str(keys_file), "--log-level", "warning", "--chain-latency", str(LATENCY)]
    extra += ["--store", store] if store else []
    with serving(*extra, keys=()) as mock, requests.Session() as http:

        def send(method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
            response = http.request(method, mock.url + path, timeout=30, **kwargs)
            return response.status_code, dict(response.headers), response.json()

        yield send


@pytest.fixture(scope="module", params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "memory" else request.getfixturevalue("redis_url")


@pytest.fixture(scope="module", params=["in-process", "served"])
def target(request: pytest.FixtureRequest, store: str | None) -> Iterator[Send]:
    with tempfile.TemporaryDirectory() as folder:
        opened = (_in_process if request.param == "in-process" else _served)(store, _keys_file(folder))
        with opened as send:
            yield send


def _fresh(send: Send) -> None:
    assert send("DELETE", "/__admin/state")[0] == 200
    assert send("DELETE", "/__admin/faults")[0] == 200
    assert send("PUT", "/__admin/clock", json={"now": START})[0] == 200


def _auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _request(send: Send, step: Step) -> tuple[int, dict[str, str], Any]:
    body = {"sessionDuration": step.duration}
    if step.action == "model":
        return send("POST", f"{SESSION}/modelsession", params={"model_id": step.arg}, json=body, headers=_auth())
    if step.action == "bid":
        return send("POST", f"{SESSION}/bidsession", params={"bid_id": step.arg}, json=body, headers=_auth())
    if step.action == "approve":
        return send("POST", f"{SESSION}/approve", params={"amount": "1"}, headers=_auth())
    return send("POST", f"{SESSION}/{step.action}session", headers=_auth())


def _admin(send: Send, step: Step) -> None:
    if step.action == "fault":
        status, _, body = send("POST", "/__admin/faults", json={"kind": step.arg, "key": KEY[:9], **step.options})
        assert status == 201, body
    elif step.action == "advance":
        assert send("POST", "/__admin/clock/advance", json={"seconds": step.arg})[0] == 200
    elif step.action == "sync":
        assert send("POST", "/__admin/sync")[0] == 200
    else:
        (state,) = [k for k in send("GET", "/__admin/state")[2]["keys"] if k["key"] == KEY[:9]]
        left = [s for s in state["chain"] if not s["in_gateway"]]
        assert len(left) == step.arg, state


class Ids:
    """Session ids by identity pattern: S1, S2, ... bound on first sight, then compared."""

    def __init__(self) -> None:
        self.bound: dict[str, str] = {}

    def expect(self, expected: Any, actual: Any) -> Any:
        """`expected` with its placeholders replaced by the ids they stand for (binding new ones)."""
        if isinstance(expected, dict) and isinstance(actual, dict):
            return {name: self.expect(value, actual.get(name)) for name, value in expected.items()}
        if expected == PREFIX:
            return KEY[:9]
        if expected == "TX" and isinstance(actual, str) and actual.startswith("0x"):
            return actual
        if isinstance(expected, str) and expected[:1] == "S" and expected[1:].isdigit():
            if expected not in self.bound and isinstance(actual, str) and actual not in self.bound.values():
                self.bound[expected] = actual
            return self.bound.get(expected, expected)
        return expected


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_the_mock_answers_as_the_gateway_did(target: Send, name: str) -> None:
    _fresh(target)
    ids = Ids()
    for number, step in enumerate(SEQUENCES[name], start=1):
        if step.action in {"fault", "advance", "sync", "orphans"}:
            _admin(target, step)
            continue
        status, _, body = _request(target, step)
        assert (status, body) == (step.status, ids.expect(step.body, body)), f"{name}, step {number}: {step}"


def _burst(send: Send, path: str, **kwargs: Any) -> list[tuple[int, dict[str, str], Any]]:
    """`BID_BURST` requests sent at once: every thread waits at a barrier, then sends."""
    start = threading.Barrier(BID_BURST)

    def one(_: int) -> tuple[int, dict[str, str], Any]:
        start.wait()
        return send("POST", f"{SESSION}/{path}", **kwargs)

    with ThreadPoolExecutor(BID_BURST) as pool:
        return list(pool.map(one, range(BID_BURST)))


def test_parallel_bidsessions_collide_and_parallel_modelsessions_queue(target: Send) -> None:
    """Section 2: one 200 and UniqueViolation 500s for a bid burst, the losers left open on chain."""
    _fresh(target)
    answers = _burst(
        target, "bidsession", params={"bid_id": observed.B1}, json={"sessionDuration": 3600}, headers=_auth()
    )
    winners = [body for status, _, body in answers if status == 200]
    losers = [body["detail"] for status, _, body in answers if status == 500]
    assert (len(winners), len(losers)) == (1, BID_BURST - 1), answers
    assert all(text.split("\n")[0] == observed.UNIQUE_FIRST_LINE for text in losers), losers[0]
    assert target("POST", f"{SESSION}/pingsession", headers=_auth())[2] == observed.alive(winners[0]["session_id"])
    (state,) = target("GET", "/__admin/state")[2]["keys"]
    assert sum(not s["in_gateway"] for s in state["chain"]) == BID_BURST - 1  # each loser opened one on chain
    assert target("POST", f"{SESSION}/closesession", headers=_auth())[2] == observed.closed(winners[0]["session_id"])
    body = {"sessionDuration": 3600}
    answers = _burst(target, "modelsession", params={"model_id": observed.MISTRAL}, json=body, headers=_auth())
    assert {status for status, _, _ in answers} == {200}
    assert len({body["session_id"] for _, _, body in answers}) == 1


def test_routing_auth_and_keys_as_observed(target: Send) -> None:
    """Sections 3 and 4: the models list with a trailing slash, a key with no user, a legacy bare prefix."""
    _fresh(target)
    listed = target("GET", "/api/v1/models")
    assert target("GET", "/api/v1/models/")[:3:2] == listed[:3:2] == (200, listed[2])
    assert target("GET", "/api/v1/models/", headers=_auth())[:3:2] == (200, listed[2])
    assert target("POST", f"{SESSION}/modelsession/", headers=_auth())[:3:2] == (404, {"detail": "Not Found"})
    for path, params in (("pingsession", {}), ("modelsession", {"model_id": "x"}), ("approve", {"amount": "1"})):
        status, headers, body = target("POST", f"{SESSION}/{path}", params=params, json={}, headers=_auth(ORPHAN))
        assert (status, body) == (401, {"detail": "API key not associated with a valid user"})
        assert headers["www-authenticate"] == "Bearer"
    create = {"params": {"model_id": observed.MISTRAL}, "json": {"sessionDuration": 3600}}
    opened = target("POST", f"{SESSION}/modelsession", headers=_auth(LEGACY + ".any-secret-at-all"), **create)[2]
    assert target("POST", f"{SESSION}/pingsession", headers=_auth(LEGACY))[2] == observed.alive(opened["session_id"])
    assert target("POST", f"{SESSION}/closesession", headers=_auth(LEGACY))[2] == observed.closed(opened["session_id"])


def test_the_426_carries_no_process_time_and_comes_before_authentication() -> None:
    """Section 6: plain HTTP to a public host is refused before the timing middleware and the key check."""
    client = TestClient(create_app(Config(keys=(KEY,), enforce_https=True)), base_url="http://api.example.com")
    refused = client.post(f"{SESSION}/pingsession", headers=_auth())
    assert (refused.status_code, refused.json()) == (
        426,
        {
            "error": "HTTPS Required",
            "message": "This API requires HTTPS. Please use the secure endpoint.",
            "https_url": "https://api.example.com/api/v1/session/pingsession",
        },
    )
    assert "x-process-time" not in refused.headers
    assert "www-authenticate" not in refused.headers
    forwarded = client.post(f"{SESSION}/pingsession", headers={**_auth(), "X-Forwarded-Proto": "https"})
    assert (forwarded.status_code, forwarded.json()) == (200, observed.NO_SESSION)
    assert "x-process-time" in forwarded.headers
