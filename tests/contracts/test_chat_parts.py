"""The suite's chat parts in-process: reading and judging SSE streams, the chat meter and cap, and how
the summary reports the chat rules with and without --allow-chat (the scenarios against served
gateways: tests/gallery)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from contracts.answers import AnswerError, RuleBroken
from contracts.api import CHAT, CHAT_RULES, EMBEDDINGS, PING, STREAM_MEDIA_TYPE
from contracts.chat import (
    AUTOMATION_OFF,
    EMBEDDINGS_AUTOMATION_OFF,
    automation_path,
    expect_chat,
    expect_stream,
    need_chat,
    refused_for_automation,
)
from contracts.chat_budget import NOT_ALLOWED, ChatMeter
from contracts.safety import Ledger
from contracts.settings import DEFAULT_CHAT_CAP, Settings
from contracts.sse import DONE_DATA, check_events, read_events
from contracts.summary import Summary
from contracts.test_conformance import _chat_guard, _count_chat_session
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


def _response(status: int, content_type: str, body: str) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = status, body.encode()
    response.headers["content-type"] = content_type
    return response


def test_an_automation_refusal_is_recognised_by_its_exact_answer() -> None:
    refused = _response(403, "application/json", json.dumps({"detail": AUTOMATION_OFF}))
    assert refused_for_automation(CHAT, refused)
    embeddings = _response(500, "application/json", json.dumps({"detail": EMBEDDINGS_AUTOMATION_OFF}))
    assert refused_for_automation(EMBEDDINGS, embeddings)
    assert not refused_for_automation(CHAT, embeddings)  # embeddings' status and text, not chat's
    other = _response(403, "application/json", json.dumps({"detail": "Forbidden"}))
    assert not refused_for_automation(CHAT, other)
    assert not refused_for_automation(CHAT, _response(403, STREAM_MEDIA_TYPE, frames(ERROR)))


def test_a_stream_that_is_not_a_200_event_stream_breaks_the_rule_named() -> None:
    with pytest.raises(RuleBroken, match=r"^C1 broken: .* answered 200 application/json"):
        expect_stream(_response(200, "application/json", "{}"), rule="C1")
    with pytest.raises(AnswerError, match="answered 500 text/event-stream"):
        expect_stream(_response(500, STREAM_MEDIA_TYPE, frames(ERROR)))
    assert expect_stream(_response(200, STREAM_MEDIA_TYPE, frames(CHUNK, DONE_DATA))).chunks
    assert expect_chat(_response(200, STREAM_MEDIA_TYPE, frames(CHUNK, DONE_DATA)), stream=True, rule="C1")


def test_chat_is_skipped_when_not_allowed_or_over_its_cap() -> None:
    def run(settings: Settings, meter: ChatMeter) -> Any:
        return SimpleNamespace(settings=settings, chats=meter)

    with pytest.raises(pytest.skip.Exception, match=f"^{NOT_ALLOWED}$"):
        need_chat(run(Settings(base_url="http://gateway"), ChatMeter()), 1, "C1's chat")
    with pytest.raises(pytest.skip.Exception, match=r"the chat cap \(0\) leaves no room for C1's chat"):
        need_chat(run(Settings(base_url="http://gateway", allow_chat=True), ChatMeter(cap=0)), 1, "C1's chat")
    need_chat(run(Settings(), ChatMeter()), 1, "C1's chat")  # in-process: no limit
    assert automation_path("sk-AbC123.x") == "/__admin/keys/sk-AbC123/automation"


def test_generated_chat_cases_wait_for_allow_chat_the_chat_cap_and_the_session_cap() -> None:
    ledger = Ledger(cap=1)
    answers = [{"status": "alive", "session_id": "0x" + "cd" * 32}, {"status": "no_session"}]
    client = SimpleNamespace(post=lambda path, key: SimpleNamespace(json=lambda: answers.pop(0)))
    settings = Settings(base_url="http://gateway", api_keys=("sk-AbC123.x",), allow_chat=True)
    run: Any = SimpleNamespace(settings=settings, chats=ChatMeter(cap=1), ledger=ledger, client=client, keys=("k",))
    assert _chat_guard(None, run)
    _count_chat_session(run)  # ping: the chat opened 0xcdcd...
    _count_chat_session(run)  # ping: nothing
    assert ledger.opened == {"0x" + "cd" * 32}
    assert not _chat_guard(None, run)  # the session cap is reached
    run.chats.sent = 1
    assert not _chat_guard(None, run)  # and the chat cap
    assert ledger.held_back == {"chat (session cap reached)": 1, "chat (chat cap reached)": 1}
    run.ledger.cap = None
    _count_chat_session(run)  # no cap: nothing to count, no ping sent
    run.settings = Settings(base_url="http://gateway", api_keys=("sk-AbC123.x",))
    with pytest.raises(pytest.skip.Exception, match=f"^{NOT_ALLOWED}$"):
        _chat_guard(None, run)
