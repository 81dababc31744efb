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


MISTRAL, LLAMA = "mistral-31-24b", "llama-3.3-70b"
OTHER_KEY = {"Authorization": f"Bearer {MOCK_KEYS[1]}"}


class Calls:
    """One variant's mock, called in process: each call's JSON answer (the status checked where it matters)."""

    def __init__(self, name: str) -> None:
        self.client = TestClient(_variant(name))

    def model(self, model: str, duration: int = 3600, headers: dict[str, str] = AUTH, status: int = 200) -> Any:
        body = {**BODY, "sessionDuration": duration}
        answer = self.client.post(f"{SESSION}/modelsession", params={"model_id": model}, json=body, headers=headers)
        assert answer.status_code == status, answer.text
        return answer.json().get("session_id", answer.json())

    def bid(self) -> Any:
        answer = self.client.post(f"{SESSION}/bidsession", params={"bid_id": BID}, json=BODY, headers=AUTH)
        assert answer.status_code == 200, answer.text
        return answer.json()["session_id"]

    def close(self, headers: dict[str, str] = AUTH) -> Any:
        return self.client.post(f"{SESSION}/closesession", headers=headers).json()

    def ping(self, headers: dict[str, str] = AUTH) -> Any:
        body = self.client.post(f"{SESSION}/pingsession", headers=headers).json()
        return body["status"], body.get("session_id")


def test_a_create_after_a_close_revives_the_closed_session() -> None:
    calls = Calls("create-after-close-revives")
    first = calls.model(MISTRAL)
    assert calls.close()["session_id"] == first
    assert calls.model(MISTRAL) == first  # v1.14.0: a new session
    assert calls.model(LLAMA) != first  # a switch is unchanged


def test_switching_back_revives_the_first_models_session() -> None:
    calls = Calls("switch-back-revives")
    first = calls.model(MISTRAL)
    second = calls.model(LLAMA)
    assert second != first
    assert calls.model(MISTRAL) == first  # v1.14.0: a third session
    calls.close()
    assert calls.model(MISTRAL) not in (first, second)  # after a close: a new one, as always


def test_a_model_create_after_a_bid_answers_500() -> None:
    calls = Calls("model-after-bid-500")
    calls.model(MISTRAL)
    bid = calls.bid()
    assert calls.model(LLAMA, status=500)["detail"].startswith("Unexpected error")
    assert calls.ping() == ("alive", bid)
    calls.close()
    assert calls.model(LLAMA) != bid  # with no bid session, creates work


def test_reuse_only_when_the_duration_matches_too() -> None:
    calls = Calls("reuse-needs-same-duration")
    first = calls.model(MISTRAL, 600)
    assert calls.model(MISTRAL, 600) == first
    other = calls.model(MISTRAL, 3600)
    assert other != first  # v1.14.0: the same session (R1 is judged across durations)
    assert calls.ping() == ("alive", other)


def test_a_key_over_its_quota_keeps_its_session_on_any_model() -> None:
    calls = Calls("quota-keeps-current")
    opened = [calls.model(model) for model in (MISTRAL, LLAMA, MISTRAL)]
    assert len(set(opened)) == 3  # the first three switches are fine
    assert calls.model(LLAMA) == opened[-1]  # the fourth returns the mistral session
    assert calls.model(MISTRAL, headers=OTHER_KEY) != opened[-1]  # the other key has its own quota


def test_the_third_reuse_opens_a_new_session() -> None:
    calls = Calls("third-reuse-opens-new")
    first = calls.model(MISTRAL)
    assert [calls.model(MISTRAL) for _ in range(2)] == [first, first]
    assert calls.model(MISTRAL) != first  # v1.14.0: the same session, however often it is asked for


def test_a_failed_switch_leaves_the_new_model_on_the_old_row() -> None:
    calls = Calls("failed-switch-keeps-new-model")
    first = calls.model(MISTRAL)
    calls.model(LLAMA, 299, status=500)
    # v1.14.0: a new session (the old row is mistral's); here the closed mistral session is reused, and fails
    assert calls.model(LLAMA, status=500)["detail"].endswith("Session created but not valid in proxy router")
    assert calls.ping() == ("dead", first)


def test_a_key_gets_another_keys_session_on_the_same_model() -> None:
    calls = Calls("keys-share-model-sessions")
    first = calls.model(MISTRAL)
    assert calls.model(MISTRAL, headers=OTHER_KEY) == first  # v1.14.0: one session per key
    assert calls.ping(OTHER_KEY) == ("alive", first)
    assert calls.model(LLAMA, headers=OTHER_KEY) != first


def test_a_close_hands_the_closed_sessions_id_to_the_next_session() -> None:
    calls = Calls("ids-count-open-sessions")
    first = calls.model(MISTRAL)
    second = calls.model(LLAMA)
    assert second != first  # a switch counts on
    calls.close()
    assert calls.model(MISTRAL) == second  # a new session on another model, with the closed one's id
    assert calls.model(MISTRAL, headers=OTHER_KEY) not in (first, second)


def test_a_second_bidsession_returns_the_first() -> None:
    calls = Calls("bid-reused-like-a-model")
    first = calls.bid()
    assert calls.bid() == first  # v1.14.0: every bidsession opens a new session
    calls.close()
    assert calls.bid() != first


def test_a_close_for_a_key_without_a_session_closes_another_keys() -> None:
    calls = Calls("close-falls-back-to-any-key")
    first = calls.model(MISTRAL)
    assert calls.close(OTHER_KEY)["session_id"] == first  # v1.14.0: "No active session found to close"
    assert calls.ping() == ("no_session", None)
    mine = calls.model(LLAMA, headers=OTHER_KEY)
    assert calls.close(OTHER_KEY)["session_id"] == mine  # with a session of its own, the key closes that one
