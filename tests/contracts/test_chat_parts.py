"""The suite's chat parts in-process: reading and judging SSE streams, the chat meter and cap, and how
the summary reports the chat rules with and without --allow-chat (the scenarios against served
gateways: tests/gallery)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from contracts.answers import AnswerError
from contracts.api import CHAT, CHAT_RULES, PING
from contracts.chat_budget import NOT_ALLOWED, ChatMeter
from contracts.settings import DEFAULT_CHAT_CAP, Settings
from contracts.sse import DONE_DATA, check_events, read_events
from contracts.summary import Summary
from tests.contracts.test_budget_and_summary import _report, _worker

CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1741219200,
    "model": "mistral-31-24b",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}],
}
ERROR = {"error": {"message": 'HTTP 500: {"error":"session not found"}', "type": "server_error", "status": 500}}


def frames(*values: Any) -> str:
    return "".join(f"data: {value if isinstance(value, str) else json.dumps(value)}\n\n" for value in values)


def test_a_stream_is_read_event_by_event() -> None:
    events = read_events(": comment\r\n\r\n" + frames(CHUNK) + "event: x\ndata: [DONE]\n\n", DONE_DATA)
    assert [event.done for event in events.events] == [False, True]
    assert events.events[0].value == CHUNK
    assert events.chunks == events.events[:1]
    assert not events.problems
    broken = read_events('data: {"a": 1}\n\n{"error":"raw"}\n\nid: 3\n\ndata: [DO', DONE_DATA)
    assert broken.problems == (
        'not an SSE field: \'{"error":"raw"}\'',
        "an event without data: 'id: 3'",
        'the stream ends inside an event: \'data: {"a": 1}\\n\\n{"error":"raw"}\\n\\nid: 3\\n\\ndata: [DO\'',
    )


def test_a_good_stream_and_a_failed_one_pass() -> None:
    assert len(check_events(frames(CHUNK, CHUNK, DONE_DATA), "done").chunks) == 2
    assert check_events(frames(ERROR), "error").events[-1].error
    assert check_events(frames(CHUNK, ERROR)).events[-1].error  # broke mid-answer: either ending is allowed


@pytest.mark.parametrize(
    ("body", "ends", "says"),
    [
        (frames(CHUNK), "done", "a successful stream must end with `data: [DONE]`"),
        (frames(CHUNK, DONE_DATA), "error", "a failed stream must end with one error frame"),
        (frames(CHUNK), "either", "a stream must end with `data: [DONE]` or an error frame"),
        ("", "either", "or an error frame: nothing"),
        (frames(DONE_DATA, CHUNK), "either", "`data: [DONE]` must be the stream's last event, but event 1 is one"),
        (frames(ERROR, DONE_DATA), "either", "an error frame must be the stream's last event"),
        (frames("not json", DONE_DATA), "done", "stream event 1 is neither JSON nor [DONE]"),
        (frames({**CHUNK, "object": "chat.completion"}, DONE_DATA), "done", "stream event 1 (chunk) breaks"),
        (frames({"error": "session expired"}), "error", "stream event 1 (error frame) breaks the contract"),
        ('{"error":"raw"}', "error", "not server-sent events"),
    ],
)
def test_a_broken_stream_is_named(body: str, ends: str, says: str) -> None:
    with pytest.raises(AnswerError, match=None) as caught:
        check_events(body, ends)
    assert says in str(caught.value)
    assert str(caught.value).startswith(CHAT.label)


def test_the_chat_meter_counts_chat_requests_against_its_cap() -> None:
    meter = ChatMeter(cap=2)

    def answer(path: str) -> Any:
        return SimpleNamespace(request=SimpleNamespace(url=f"http://gateway{path}"))

    meter.observe(answer(CHAT.path))
    meter.observe(answer(PING.path))
    assert meter.sent == 1
    assert meter.room(1)
    assert not meter.room(2)
    assert ChatMeter().room(1000)


def test_chat_is_allowed_in_process_and_on_request_against_a_url() -> None:
    assert Settings().chat_allowed
    assert Settings().chat_cap is None
    url = Settings(base_url="http://gateway")
    assert not url.chat_allowed
    assert url.chat_cap == DEFAULT_CHAT_CAP
    assert Settings(base_url="http://gateway", allow_chat=True, max_chats=0).chat_cap is None
    assert Settings(base_url="http://gateway", allow_chat=True, max_chats=5).chat_cap == 5


def _chat_summary(**worker: Any) -> Summary:
    summary = Summary(Settings(base_url="http://gateway", api_keys=("sk-AbC123.x",)))
    summary.describe("t::c1", ("C1", "C4"), ("POST /chat",))
    outcome = "skipped" if not worker.get("chat_allowed") else "passed"
    summary.record(_report("t::c1", outcome, checked=("C1",), longrepr=("f.py", 1, f"Skipped: {NOT_ALLOWED}")))
    summary.add_worker(_worker(**worker))
    return summary


def test_without_allow_chat_the_chat_rules_read_not_checked_and_do_not_fail_the_run() -> None:
    summary = _chat_summary()
    assert summary.rule_line("C1") == f"NOT CHECKED ({NOT_ALLOWED})"
    assert summary.rule_line("C6") == f"NOT CHECKED ({NOT_ALLOWED})"
    assert not set(CHAT_RULES) & set(summary.required())
    assert summary.unchecked() == []
    assert f"chat: none sent ({NOT_ALLOWED})" in summary.lines(1.0)


def test_with_allow_chat_the_chat_rules_are_required_and_the_chats_counted() -> None:
    summary = _chat_summary(chat_allowed=True, chats=7, chat_cap=30)
    assert summary.rule_line("C1") == "passed   (1 checked)"
    assert set(CHAT_RULES) <= set(summary.required())
    assert summary.unchecked() == ["C4 (1 test(s) ran but none exercised it)"]
    assert "chat: 7 chat/embeddings requests (cap 30)" in summary.lines(1.0)
    uncapped = _chat_summary(chat_allowed=True, chats=2, chat_cap=None)
    assert "chat: 2 chat/embeddings requests (no cap)" in uncapped.lines(1.0)
