"""The simulated provider: deterministic OpenAI answers, told what to answer, and the SSE stream's frames."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from starlette.testclient import TestClient

from mockserver.domain import FakeClock
from tests.chat.helpers import PREFIX, UNKNOWN_SESSION, chat, embed, frames, queue
from tests.conftest import ClientFactory

BROKEN = (
    "Failed to create chat completions stream: peer closed connection without sending complete message body "
    "(incomplete chunked read)"
)


def test_answers_are_openai_shaped_and_reproducible_for_a_seed(make_client: ClientFactory) -> None:
    first, again = make_client(), make_client()
    one, two = chat(first).json(), chat(again).json()
    assert one == two  # same seed, same session ids, same prompt
    assert one["object"] == "chat.completion"
    assert one["model"] == "mistral-31-24b"
    [choice] = one["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    usage = one["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 1
    other = make_client(seed=8)
    assert chat(other).json()["choices"] != one["choices"]


def test_a_stream_is_chunks_then_done_and_says_what_the_plain_answer_says(client: TestClient) -> None:
    plain = chat(client).json()
    streamed = chat(client, stream=True)
    assert streamed.status_code == 200
    assert streamed.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert streamed.headers["cache-control"] == "no-cache"
    *chunks, done = frames(streamed.text)
    assert done == "[DONE]"
    parsed = [json.loads(chunk) for chunk in chunks]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in parsed)
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in parsed)
    assert text == plain["choices"][0]["message"]["content"]
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_queued_reply_is_used_once_and_by_its_key_only(client: TestClient) -> None:
    assert queue(client, key=PREFIX, content="Only for you.").status_code == 201
    assert queue(client, content="For anyone.").status_code == 201
    listed = client.get("/__admin/replies").json()["replies"]
    assert [reply["content"] for reply in listed] == ["Only for you.", "For anyone."]
    assert chat(client, key="sk-XyZ789." + "fedcba9876543210" * 4).json()["choices"][0]["message"]["content"] == (
        "For anyone."
    )
    assert chat(client).json()["choices"][0]["message"]["content"] == "Only for you."
    assert client.get("/__admin/replies").json() == {"replies": []}
    queue(client, content="a")
    queue(client, key=PREFIX, content="b")
    assert client.delete("/__admin/replies", params={"key": PREFIX}).json() == {"cleared": 1}
    assert client.delete("/__admin/replies").json() == {"cleared": 1}


def test_tool_calls_plain_and_streamed(client: TestClient) -> None:
    queue(client, tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    message = chat(client).json()["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    [call] = message["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    queue(client, tool_calls=[{"name": "a"}, {"name": "b", "arguments": "{}"}], finish_reason="stop")
    *chunks, done = frames(chat(client, stream=True).text)
    deltas = [json.loads(chunk)["choices"][0] for chunk in chunks]
    names = [d["delta"]["tool_calls"][0]["function"]["name"] for d in deltas if "tool_calls" in d["delta"]]
    assert (names, deltas[-1]["finish_reason"], done) == (["a", "b"], "stop", "[DONE]")


def test_a_provider_error_is_the_gateways_error_plain_and_one_frame_streamed(client: TestClient) -> None:
    for _ in range(2):  # the gateway asks twice before it gives up
        queue(client, error={"status": 429, "body": '{"error":"rate limited"}'})
    refused = chat(client)
    assert (refused.status_code, refused.json()) == (
        429,
        {"error": {"message": 'HTTP 429: {"error":"rate limited"}', "type": "client_error"}},
    )
    queue(client, error={"status": 500})
    streamed = chat(client, stream=True)
    assert streamed.status_code == 200
    assert streamed.text == (
        'data: {"error": {"message": "HTTP 500: {\\"error\\":\\"provider error\\"}", "type": "server_error", '
        '"status": 500}}\n\n'
    )


def test_a_stream_that_breaks_after_n_chunks_ends_with_the_failure_frame(client: TestClient) -> None:
    queue(client, content="one two three four", break_after=2)
    *chunks, last = frames(chat(client, stream=True).text)
    assert len(chunks) == 2
    assert json.loads(last) == {"error": {"message": BROKEN, "type": "unknown", "status": None}}


@pytest.mark.parametrize(
    ("kind", "frame"),
    [
        (
            "chat_unreachable",
            {
                "message": "Failed to create chat completions stream: All connection attempts failed",
                "type": "unknown",
                "status": None,
            },
        ),
        (
            "session_expired",
            {"message": 'HTTP 500: {"error":"session expired"}', "type": "server_error", "status": 500},
        ),
    ],
)
def test_stream_faults_are_one_error_frame_in_a_200(client: TestClient, kind: str, frame: dict[str, object]) -> None:
    client.post("/__admin/faults", json={"kind": kind, "count": 1})
    streamed = chat(client, stream=True)
    assert streamed.status_code == 200
    assert [json.loads(f) for f in frames(streamed.text)] == [{"error": frame}]


def test_unknown_body_session_streams_one_frame(client: TestClient) -> None:
    streamed = chat(client, stream=True, session_id=UNKNOWN_SESSION)
    assert json.loads(frames(streamed.text)[0])["error"]["message"] == 'HTTP 500: {"error":"session not found"}'


def test_embeddings_floats_base64_batches_and_dimensions(client: TestClient, clock: FakeClock) -> None:
    floats = embed(client, input=["hello", "world"]).json()
    assert [item["index"] for item in floats["data"]] == [0, 1]
    vector = floats["data"][0]["embedding"]
    assert len(vector) == 8
    assert abs(sum(x * x for x in vector) - 1) < 1e-4
    packed = embed(client, encoding_format="base64").json()["data"][0]["embedding"]
    decoded = struct.unpack("<8f", base64.b64decode(packed))
    assert decoded == pytest.approx(vector, abs=1e-6)
    assert len(embed(client, dimensions=1024).json()["data"][0]["embedding"]) == 1024
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_content_parts_count_as_prompt_tokens(client: TestClient) -> None:
    parts = [{"type": "text", "text": "two words"}, {"type": "image_url", "image_url": {"url": "https://x"}}]
    body = chat(client, messages=[{"role": "user", "content": parts}, {"role": "assistant", "content": None}]).json()
    assert body["usage"]["prompt_tokens"] == 2
