"""The self-check of streamed answers: every SSE frame against the spec's `ChatStreamEvent`, as it is sent."""

from __future__ import annotations

import json
import logging

import pytest

from mockserver.config import SelfCheck
from mockserver.web import handlers
from mockserver.web.errors import SelfCheckFailed
from mockserver.web.selfcheck import ResponseChecks
from openapi import UndocumentedResponse, Validators, load_spec
from tests.chat.helpers import CHAT_PATH, HELLO, queue
from tests.conftest import KEY, ClientFactory
from tests.contracts.test_chat_parts import CHUNK  # one chat.completion.chunk as the spec has it
from tests.web.helpers import auth

SPEC = load_spec()
CHECKS = ResponseChecks(SPEC, Validators(SPEC))
CHAT = "create_chat_completion_api_v1_chat_completions_post"
PING = "ping_session_api_v1_session_pingsession_post"
ERROR = {"error": {"message": "upstream said no", "type": "server_error", "status": 500}}
DONE = b"data: [DONE]\n\n"


def frame(value: object) -> bytes:
    return b"data: " + json.dumps(value, separators=(",", ":")).encode() + b"\n\n"


def problems_of(*frames: bytes) -> list[str]:
    """Every problem the check reports for these frames, the end included."""
    check = CHECKS.stream(CHAT, 200)
    found = [problem for sent in frames for problem in check.frame(sent)]
    return [*found, *check.end()]


def test_a_stream_of_chunks_then_done_conforms() -> None:
    assert problems_of(frame(CHUNK), frame(CHUNK), DONE) == []


def test_one_error_frame_ends_a_stream_without_done() -> None:
    assert problems_of(frame(CHUNK), frame(ERROR)) == []


def test_a_chunk_that_breaks_the_schema_is_named_with_its_path_and_keyword() -> None:
    broken = {**CHUNK, "object": "chat.completion"}
    (problem,) = problems_of(frame(broken), DONE)
    assert problem.startswith("stream frame 1: ")
    assert "const" in problem


def test_nothing_may_follow_the_end() -> None:
    assert problems_of(DONE, frame(CHUNK)) == [
        f"stream frame 2 comes after the stream's end (data: [DONE]): {frame(CHUNK)[:120]!r}"
    ]
    assert problems_of(frame(ERROR), DONE)[0].startswith("stream frame 2 comes after the stream's end (an error frame)")


def test_a_stream_must_end_with_done_or_an_error() -> None:
    assert problems_of(frame(CHUNK)) == ["the stream ended after 1 frames without `data: [DONE]` or an error frame"]


@pytest.mark.parametrize(
    ("sent", "says"),
    [
        (b'{"raw": 1}\n\n', "is not one server-sent event of `data:` lines"),
        (b"data: [DONE]", "is not one server-sent event of `data:` lines"),
        (b"data: \xff\n\n", "is not one server-sent event of `data:` lines"),
        (b"data: [END]\n\n", "is neither JSON nor [DONE]: '[END]'"),
    ],
)
def test_a_frame_that_is_no_sse_event_of_json_is_reported(sent: bytes, says: str) -> None:
    assert says in problems_of(sent, DONE)[0]


def test_multiline_data_is_joined_as_an_sse_parser_joins_it() -> None:
    text = json.dumps(CHUNK, indent=1).replace("\n", "\ndata: ")
    assert problems_of(f"data: {text}\n\n".encode(), DONE) == []


def test_only_documented_streams_are_checked() -> None:
    with pytest.raises(UndocumentedResponse):
        CHECKS.stream(PING, 200)


def test_the_mock_checks_its_own_stream_and_raises_in_tests(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "DONE_FRAME", b"data: [END]\n\n")  # a mock that ends its streams wrongly
    client = make_client()
    with pytest.raises(SelfCheckFailed) as failure:
        client.post(CHAT_PATH, json={"model": "mistral-31-24b", "messages": HELLO, "stream": True}, headers=auth(KEY))
    assert (failure.value.operation_id, failure.value.status) == (CHAT, 200)
    assert "is neither JSON nor [DONE]: '[END]'" in str(failure.value)


def test_the_served_mock_logs_a_bad_stream_and_still_sends_it(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(handlers, "DONE_FRAME", b"")  # a stream that stops without its end
    client = make_client(self_check=SelfCheck.LOG)
    queue(client, content="Paris.")
    with caplog.at_level(logging.ERROR, logger="mockserver"):
        sent = client.post(
            CHAT_PATH, json={"model": "mistral-31-24b", "messages": HELLO, "stream": True}, headers=auth(KEY)
        )
    assert sent.status_code == 200
    assert sent.text.startswith("data: {")
    assert "is not one server-sent event" in caplog.text  # the empty frame
    assert "without `data: [DONE]` or an error frame" in caplog.text


def test_a_conforming_stream_passes_the_check_untouched(make_client: ClientFactory) -> None:
    client = make_client()
    queue(client, error={"status": 400, "body": "no"})
    body = {"model": "mistral-31-24b", "messages": HELLO, "stream": True}
    sent = client.post(CHAT_PATH, json=body, headers=auth(KEY))
    assert sent.status_code == 200
    assert sent.text.count("data: ") == 1
    assert '"error"' in sent.text


def test_with_the_self_check_off_a_stream_is_sent_unchecked(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(handlers, "DONE_FRAME", b"data: [END]\n\n")
    client = make_client(self_check=SelfCheck.OFF)
    with caplog.at_level(logging.ERROR, logger="mockserver"):
        sent = client.post(
            CHAT_PATH, json={"model": "mistral-31-24b", "messages": HELLO, "stream": True}, headers=auth(KEY)
        )
    assert sent.text.endswith("data: [END]\n\n")
    assert "self-check" not in caplog.text
