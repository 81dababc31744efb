"""The gateway's own attempts at the proxy-router (chat-completions.md 2.6, 2.7, 3; observed-v1.14.0.md 7.A.6).

Non-stream chat asks twice, 1 s apart, after any error status or no connection; a stream once;
embeddings three times, 1 s then 2 s apart. Each attempt spends one use of an armed fault and takes
one queued reply, so a fault armed once on non-stream chat is absorbed by the retry. The journal lists
each attempt's status; the pauses pass on the FakeClock (the mock's sleeper in these tests).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver.config import Config
from mockserver.domain import FakeClock, NoPause, WallSleeper
from mockserver.web.app import create_app
from tests.chat.helpers import PREFIX, UNKNOWN_SESSION, chat, embed, queue
from tests.conftest import KEY, ClientFactory

EXPIRED = 'HTTP 500: {"error":"session expired"}'


def _arm(client: TestClient, kind: str, count: int, **options: Any) -> None:
    assert client.post("/__admin/faults", json={"kind": kind, "count": count, **options}).status_code == 201


def _upstream(client: TestClient) -> list[object]:
    """The proxy-router's statuses of the newest journaled request."""
    entries: list[dict[str, Any]] = client.get("/__admin/journal", params={"key": PREFIX}).json()["entries"]
    return list(entries[0]["upstream"])


def test_one_failure_is_absorbed_by_the_retry_a_second_is_the_answer(client: TestClient, clock: FakeClock) -> None:
    chat(client)
    _arm(client, "session_expired", 1)
    started = clock.now()
    answered = chat(client)
    assert (answered.status_code, _upstream(client)) == (200, [500, 200])
    assert clock.now() - started == 1.0  # the gateway's pause before its second attempt
    _arm(client, "session_expired", 2)
    refused = chat(client)
    assert (refused.status_code, refused.json()) == (500, {"error": {"message": EXPIRED, "type": "server_error"}})
    assert _upstream(client) == [500, 500]
    assert client.get("/__admin/faults").json()["faults"] == []


def test_a_stream_tries_once(client: TestClient, clock: FakeClock) -> None:
    _arm(client, "chat_upstream_error", 2, status=502)
    started = clock.now()
    assert '"status": 502' in chat(client, stream=True).text
    assert (_upstream(client), clock.now() - started) == ([502], 0.0)
    assert chat(client, stream=True).text.startswith('data: {"error"')  # the second use: the next stream
    assert chat(client, stream=True).text.endswith("data: [DONE]\n\n")


def test_unreachable_twice_is_503_with_the_number_of_attempts(client: TestClient) -> None:
    _arm(client, "chat_unreachable", 2)
    refused = chat(client)
    message = "Request failed after 2 attempts: All connection attempts failed"
    assert (refused.status_code, refused.json()) == (503, {"error": {"message": message, "type": "network_error"}})
    assert _upstream(client) == [None, None]
    _arm(client, "chat_unreachable", 1)
    assert (chat(client).status_code, _upstream(client)) == (200, [None, 200])


def test_embeddings_try_three_times_one_then_two_seconds_apart(client: TestClient, clock: FakeClock) -> None:
    _arm(client, "chat_upstream_error", 2)
    started = clock.now()
    assert (embed(client).status_code, _upstream(client)) == (200, [500, 500, 200])
    assert clock.now() - started == 3.0
    _arm(client, "chat_unreachable", 3)
    refused = embed(client)
    detail = "Embeddings request failed: Request failed after 3 attempts: All connection attempts failed"
    assert (refused.status_code, refused.json(), _upstream(client)) == (503, {"detail": detail}, [None] * 3)


def test_an_unknown_body_session_is_asked_twice_streamed_once_embedded_three_times(client: TestClient) -> None:
    assert (chat(client, session_id=UNKNOWN_SESSION).status_code, _upstream(client)) == (500, [500, 500])
    chat(client, session_id=UNKNOWN_SESSION, stream=True)
    assert _upstream(client) == [500]
    assert (embed(client, session_id=UNKNOWN_SESSION).status_code, _upstream(client)) == (500, [500, 500, 500])


def test_a_fault_that_covers_retries_breaks_the_gateways_retry_too(client: TestClient) -> None:
    _arm(client, "session_expired", 1, retries=True)
    assert (chat(client).status_code, _upstream(client)) == (500, [500, 500])
    assert chat(client).status_code == 200  # a new call: the fault is spent


def test_each_attempt_takes_the_next_queued_reply(client: TestClient) -> None:
    queue(client, error={"status": 503, "body": "busy"})
    queue(client, content="Second time lucky.")
    answered = chat(client)
    assert answered.json()["choices"][0]["message"]["content"] == "Second time lucky."
    assert _upstream(client) == [503, 200]


def test_requests_that_never_reach_the_proxy_router_list_no_attempt(client: TestClient) -> None:
    client.put(f"/__admin/keys/{PREFIX}/automation", json={"enabled": False})
    assert (chat(client).status_code, _upstream(client)) == (403, [])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("<html>bad gateway</html>", "Unexpected response format from provider: '<html>bad gateway</html>'"),
        ("", "Unexpected response format from provider: ''"),
        ("{}", "None"),
        ("null", "None"),
        ("0", "None"),
    ],
)
def test_a_200_with_an_unusable_body_is_the_gateways_500(client: TestClient, raw: str, message: str) -> None:
    chat(client)
    session_id = client.get(f"/__admin/state/{PREFIX}").json()["session"]["session_id"]
    queue(client, raw_body=raw)
    refused = chat(client)
    error = {"message": message, "type": "unexpected_response_format", "session_id": session_id}
    assert (refused.status_code, refused.json(), _upstream(client)) == (500, {"error": error}, [200])


def test_a_truthy_raw_body_is_relayed_and_a_stream_relays_it_verbatim(client: TestClient) -> None:
    completion = chat(client).json()
    queue(client, raw_body=json.dumps(completion))
    assert chat(client).json() == completion
    queue(client, raw_body='{"not": "a completion"}')  # the provider's body, relayed: the self-check lets it by
    assert chat(client).json() == {"not": "a completion"}
    queue(client, raw_body="data: half a frame")
    streamed = chat(client, stream=True)
    assert (streamed.status_code, streamed.text) == (200, "data: half a frame")
    queue(client, raw_body="")
    assert chat(client, stream=True).text == ""


def test_pauses_are_real_by_default_and_skipped_on_request(make_client: ClientFactory) -> None:
    assert isinstance(create_app(Config(keys=(KEY,))).state.mock.sleeper, WallSleeper)
    skipped = create_app(Config(keys=(KEY,), retry_pause=False)).state.mock.sleeper
    assert isinstance(skipped, NoPause)
    started = time.monotonic()
    asyncio.run(skipped.sleep(5))
    asyncio.run(WallSleeper().sleep(0.05))
    assert 0.05 <= time.monotonic() - started < 1
    client = make_client(retry_pause=False)
    assert isinstance(client.app.state.mock.sleeper, NoPause)  # type: ignore[attr-defined]
