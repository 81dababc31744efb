"""The OpenAI Python SDK, unmodified, against the served mock (`python -m mockserver`): only base_url and api_key.

One served mock for the module; each test uses its own key state (reset through the admin API).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import openai
import pytest
import requests

from tests.served import KEYS, Served, serving

PREFIX = KEYS[0][:9]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving("--seed", "3") as mock:
        yield mock


@pytest.fixture
def mock(served: Served) -> Served:
    for path in ("/__admin/state", "/__admin/faults", "/__admin/replies", "/__admin/journal"):
        requests.delete(f"{served.url}{path}", timeout=10)
    requests.put(f"{served.url}/__admin/keys/{PREFIX}/automation", json={"enabled": True}, timeout=10)
    return served


@pytest.fixture
def clients() -> Iterator[list[openai.OpenAI]]:
    made: list[openai.OpenAI] = []
    yield made
    for client in made:
        client.close()


def _client(mock: Served, made: list[openai.OpenAI], **options: object) -> openai.OpenAI:
    client = openai.OpenAI(api_key=KEYS[0], base_url=f"{mock.url}/api/v1", **options)  # type: ignore[arg-type]
    made.append(client)
    return client


def _admin(mock: Served, method: str, path: str, **kwargs: object) -> requests.Response:
    response = requests.request(method, f"{mock.url}/__admin{path}", timeout=10, **kwargs)  # type: ignore[arg-type]
    assert response.ok, response.text
    return response


def _ping(mock: Served) -> dict[str, object]:
    body: dict[str, object] = mock.post("/api/v1/session/pingsession").json()
    return body


def test_chat_plain_and_streamed_share_the_session_that_ping_and_close_show(
    mock: Served, clients: list[openai.OpenAI]
) -> None:
    client = _client(mock, clients)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    plain = client.chat.completions.create(model="mistral-31-24b", messages=messages)
    assert plain.object == "chat.completion"
    assert plain.usage is not None
    assert plain.usage.total_tokens > 0
    session = _ping(mock)["session_id"]
    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(model="mistral-31-24b", messages=messages, stream=True)
        if chunk.choices
    ]
    assert "".join(pieces) == plain.choices[0].message.content
    assert _ping(mock)["session_id"] == session
    client.chat.completions.create(model="llama-3.3-70b", messages=messages)
    switched = _ping(mock)["session_id"]
    assert switched != session
    closed = mock.post("/api/v1/session/closesession").json()
    assert closed["session_id"] == switched


def test_embeddings_decode_and_reopen_the_session(mock: Served, clients: list[openai.OpenAI]) -> None:
    client = _client(mock, clients)
    client.chat.completions.create(model="mistral-31-24b", messages=[{"role": "user", "content": "hi"}])
    chat_session = _ping(mock)["session_id"]
    result = client.embeddings.create(model="text-embedding-bge-m3", input=["hello", "world"])  # base64 on the wire
    assert [len(item.embedding) for item in result.data] == [8, 8]
    assert _ping(mock)["session_id"] != chat_session


def test_async_client_plain_and_streamed(mock: Served) -> None:
    async def run() -> tuple[str | None, str]:
        client = openai.AsyncOpenAI(api_key=KEYS[0], base_url=f"{mock.url}/api/v1")
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "async"}]
        plain = await client.chat.completions.create(model="qwen3-235b", messages=messages)
        stream = await client.chat.completions.create(model="qwen3-235b", messages=messages, stream=True)
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        await client.close()
        return plain.choices[0].message.content, text

    plain, streamed = asyncio.run(run())
    assert plain == streamed


def test_an_error_frame_raises_api_error_during_iteration(mock: Served, clients: list[openai.OpenAI]) -> None:
    _admin(mock, "POST", "/replies", json={"content": "one two three", "break_after": 1})
    stream = _client(mock, clients).chat.completions.create(
        model="mistral-31-24b", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="Failed to create chat completions stream"):
        for _ in stream:
            pass


def test_sdk_retries_meet_one_fault_that_covers_the_call_and_its_retries(
    mock: Served, clients: list[openai.OpenAI]
) -> None:
    _admin(mock, "POST", "/faults", json={"kind": "session_expired", "count": 1, "retries": True})
    client = _client(mock, clients, max_retries=2)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="mistral-31-24b", messages=messages)
    assert "session expired" in raised.value.message
    journal = _admin(mock, "GET", "/journal", params={"key": PREFIX}).json()["entries"]
    chats = [entry for entry in journal if entry["path"] == "/api/v1/chat/completions"]
    assert [(entry["status"], entry["upstream"]) for entry in chats] == [(500, [500, 500])] * 3  # gateway's retry too
    assert client.chat.completions.create(model="mistral-31-24b", messages=messages).choices  # the next call works


def test_one_upstream_failure_is_absorbed_by_the_gateways_retry_after_a_real_pause(
    mock: Served, clients: list[openai.OpenAI]
) -> None:
    _admin(mock, "POST", "/faults", json={"kind": "chat_upstream_error", "count": 1})
    client = _client(mock, clients, max_retries=0)
    started = time.monotonic()
    answer = client.chat.completions.create(model="mistral-31-24b", messages=[{"role": "user", "content": "x"}])
    assert time.monotonic() - started >= 1.0  # served with the wall clock, the gateway's 1 s pause is real
    assert answer.choices[0].message.content
    [entry] = _admin(mock, "GET", "/journal", params={"key": PREFIX}).json()["entries"]
    assert (entry["status"], entry["upstream"]) == (200, [500, 200])


def test_automation_off_is_a_permission_error(mock: Served, clients: list[openai.OpenAI]) -> None:
    _admin(mock, "PUT", f"/keys/{PREFIX}/automation", json={"enabled": False})
    with pytest.raises(openai.PermissionDeniedError):
        _client(mock, clients, max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )


def test_a_real_stream_and_a_client_that_leaves_it_is_journaled(mock: Served) -> None:
    _admin(mock, "POST", "/replies", json={"content": "a b c d e f", "chunk_delay": 0.4})
    body = {"model": "mistral-31-24b", "messages": [{"role": "user", "content": "x"}], "stream": True}
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    started = time.monotonic()
    with requests.post(f"{mock.url}/api/v1/chat/completions", json=body, headers=headers, stream=True, timeout=30) as r:
        first = next(r.iter_lines())
        waited = time.monotonic() - started
    assert first.startswith(b"data: {")
    assert waited < 2.0  # seven chunks 0.4 s apart take 2.8 s: the first came before the last was made
    deadline = time.monotonic() + 10
    statuses: list[int] = []
    while time.monotonic() < deadline and 499 not in statuses:
        time.sleep(0.2)
        statuses = [e["status"] for e in _admin(mock, "GET", "/journal", params={"key": PREFIX}).json()["entries"]]
    assert statuses[:1] == [499]
