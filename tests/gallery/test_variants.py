"""The newer variants do what they claim, seen directly (the mutants run then proves the suite sees it too)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import requests
from starlette.testclient import TestClient

from contracts.settings import MOCK_KEYS
from mockserver.config import Config
from mockserver.web.app import create_app
from tests.gallery.variants import UNIQUE_VIOLATION, VARIANTS
from tests.live import LiveServer

SESSION = "/api/v1/session"
BODY = {"sessionDuration": 3600, "directPayment": False, "failover": False}
BID = "0x" + "b1" * 32
AUTH = {"Authorization": f"Bearer {MOCK_KEYS[0]}"}


def _variant(name: str) -> Any:
    return VARIANTS[name].apply(create_app(Config(keys=MOCK_KEYS, admin=True, seed=1)))


def _burst(url: str, path: str, params: dict[str, str], count: int = 8) -> list[requests.Response]:
    """`count` creates of one key released together by a barrier, each on a connection of its own."""
    barrier, answers = threading.Barrier(count), [requests.Response()] * count

    def send(index: int) -> None:
        with requests.Session() as client:
            client.get(f"{url}/api/v1/models", timeout=30)  # connect before the barrier
            barrier.wait()
            answers[index] = client.post(f"{url}{path}", params=params, json=BODY, headers=AUTH, timeout=30)

    _together(send, count)
    return answers


def _together(send: Callable[[int], None], count: int) -> None:
    threads = [threading.Thread(target=send, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def test_parallel_bidsessions_like_v1_14_0_one_wins_the_others_get_the_unique_index_500() -> None:
    with LiveServer(_variant("bids-like-v1.14.0")) as server:
        answers = _burst(server.url, f"{SESSION}/bidsession", {"bid_id": BID})
        ping = requests.post(f"{server.url}{SESSION}/pingsession", headers=AUTH, timeout=30).json()
        later = requests.post(f"{server.url}{SESSION}/bidsession", params={"bid_id": BID}, json=BODY, headers=AUTH)
    assert sorted(answer.status_code for answer in answers) == [200] + [500] * 7
    winner = next(answer.json()["session_id"] for answer in answers if answer.status_code == 200)
    losers = [answer.json()["detail"] for answer in answers if answer.status_code == 500]
    assert losers == [UNIQUE_VIOLATION] * 7
    assert UNIQUE_VIOLATION.startswith(
        "Unexpected error: (sqlalchemy.dialects.postgresql.asyncpg.IntegrityError) <class "
        "'asyncpg.exceptions.UniqueViolationError'>: duplicate key value violates unique constraint "
        '"sessions_active_api_key_unique"\n'
    )
    assert (ping["status"], ping["session_id"]) == ("alive", winner)
    assert later.status_code == 200  # one at a time, bidsession replaces the session as always
    assert later.json()["session_id"] != winner


def test_a_three_millisecond_race_opens_several_sessions_only_for_creates_sent_together() -> None:
    params = {"model_id": "mistral-31-24b"}
    with LiveServer(_variant("racy-creates-3ms")) as server:
        one_by_one = {
            requests.post(f"{server.url}{SESSION}/modelsession", params=params, json=BODY, headers=AUTH).json()[
                "session_id"
            ]
            for _ in range(4)
        }
        bursts: list[set[str]] = []
        while not bursts or (len(bursts[-1]) < 2 and len(bursts) < 5):  # a race is a matter of timing: a few tries
            requests.post(f"{server.url}{SESSION}/closesession", headers=AUTH, timeout=30)
            bursts.append({a.json()["session_id"] for a in _burst(server.url, f"{SESSION}/modelsession", params)})
    assert len(one_by_one) == 1  # R1 holds for creates one at a time
    assert len(bursts[-1]) > 1, f"no burst of 8 parallel creates opened a second session in {len(bursts)} tries"


def test_an_alive_ping_that_says_success_false() -> None:
    client = TestClient(_variant("alive-ping-unsuccessful"))
    assert client.post(f"{SESSION}/pingsession", headers=AUTH).json()["success"] is False  # no_session: as always
    client.post(f"{SESSION}/modelsession", params={"model_id": "mistral-31-24b"}, json=BODY, headers=AUTH)
    alive = client.post(f"{SESSION}/pingsession", headers=AUTH).json()
    assert (alive["status"], alive["success"]) == ("alive", False)


def test_modelsession_echoes_the_resolved_blockchain_id() -> None:
    client = TestClient(_variant("model-echoes-resolved-id"))
    answer = client.post(f"{SESSION}/modelsession", params={"model_id": "mistral-31-24b"}, json=BODY, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["model"].startswith("0x")
