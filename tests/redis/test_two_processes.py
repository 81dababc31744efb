"""Issue 24, deliverable 4: two mock PROCESSES (separate ports) on one redis-server, under racing load on one
key, act as one gateway: R8 holds (one active session per key), the losers answer as v1.14.0 did
(observed-v1.14.0.md section 2: modelsession reuses or switches, bidsession meets the unique index as a 500),
and the journal holds every request of both, once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.served import KEYS, Served, serving

SESSION = "/api/v1/session"
MODELS = ("mistral-31-24b", "llama-3.3-70b")
BURST = 16


@pytest.fixture
def two(redis_url: str, client: Any) -> Iterator[tuple[Served, Served]]:
    # The chain takes 0.5 s to open a bid (default 0.05 s): every bid of the burst begins before the first one
    # ends on two busy cores too, so they all meet the unique index as v1.14.0's parallel bids did (a bid that
    # began after another ended would replace it instead, observed-v1.14.0.md 8.3).
    common = ("--store", redis_url, "--log-level", "warning", "--chain-latency", "0.5", "--journal-size", "10000")
    with serving(*common, keys=KEYS[:1]) as first, serving(*common, keys=KEYS[:1]) as second:
        yield first, second


def _burst(mocks: tuple[Served, Served], path: str, params: Any) -> list[requests.Response]:
    """`BURST` requests at once, alternating between the two processes; `params(n)` for the n-th."""
    start = threading.Barrier(BURST)

    def one(n: int) -> requests.Response:
        start.wait()
        return mocks[n % 2].post(path, params=params(n), json={"sessionDuration": 3600})

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        return list(pool.map(one, range(BURST)))


def _admin(served: Served, path: str, **params: Any) -> Any:
    response = requests.get(f"{served.url}/__admin{path}", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_two_processes_under_racing_creates_keep_r8_and_a_complete_journal(two: tuple[Served, Served]) -> None:
    first, second = two
    prefix = KEYS[0][:9]
    same = _burst(two, f"{SESSION}/modelsession", lambda n: {"model_id": MODELS[0]})
    assert [answer.status_code for answer in same] == [200] * BURST, [answer.text[:120] for answer in same]
    assert len({answer.json()["session_id"] for answer in same}) == 1, "a burst on one model gave several sessions"

    mixed = _burst(two, f"{SESSION}/modelsession", lambda n: {"model_id": MODELS[n % 2]})
    assert [answer.status_code for answer in mixed] == [200] * BURST, [answer.text[:120] for answer in mixed]
    handed_out = {answer.json()["session_id"] for answer in [*same, *mixed]}
    active = _admin(second, f"/state/{prefix}")["session"]["session_id"]
    ended = [session["session_id"] for session in _admin(first, "/history", key=prefix)["sessions"]]
    assert len(ended) == len(set(ended)), "a session ended twice"
    assert active not in ended, "the active session is also ended"
    assert handed_out <= {active, *ended}, "a session a client was given is neither active nor ended"
    ping = first.post(f"{SESSION}/pingsession").json()
    assert (ping["status"], ping["session_id"]) == ("alive", active)
    assert second.post(f"{SESSION}/closesession").status_code == 200

    bids = _burst(two, f"{SESSION}/bidsession", lambda n: {"bid_id": "0x" + "b1" * 32})
    statuses = sorted(answer.status_code for answer in bids)
    assert statuses == [200] + [500] * (BURST - 1), [answer.text[:120] for answer in bids]
    assert all("UniqueViolationError" in answer.text for answer in bids if answer.status_code == 500)
    (winner,) = [answer.json()["session_id"] for answer in bids if answer.status_code == 200]
    assert first.post(f"{SESSION}/pingsession").json()["session_id"] == winner

    sent = Counter(
        (path, answer.status_code)
        for path, answers in (("modelsession", [*same, *mixed]), ("bidsession", bids))
        for answer in answers
    )
    sent.update({("pingsession", 200): 2, ("closesession", 200): 1})
    assert _journaled(first, prefix, sum(sent.values())) == sent


def _journaled(served: Served, prefix: str, expected: int) -> Counter[tuple[str, int]]:
    """The session requests the journal holds, once it holds `expected` of them (an entry is written just
    after its answer is sent)."""
    deadline = time.monotonic() + 10
    while True:
        entries = _admin(served, "/journal", key=prefix)["entries"]
        journaled = Counter(
            (entry["path"].rsplit("/", 1)[1], entry["status"]) for entry in entries if entry["path"].startswith(SESSION)
        )
        if sum(journaled.values()) >= expected or time.monotonic() > deadline:
            return journaled
        time.sleep(0.05)
