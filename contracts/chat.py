"""Chat completions and embeddings in a contract run: what they cost, how each answer is checked, and
which session the key holds afterwards.

Chat costs tokens on a real gateway, so against a URL it is sent only with `--allow-chat`, and at most
`--max-chats` requests (chat and embeddings, counted by `ChatMeter` on every response the client sees).
Every answer is checked against the spec: a JSON answer by `expect_answer`, a `text/event-stream` answer
event by event (`expect_stream`): each chunk against the chunk schema, an error frame against the error
frame schema and only as the last event, and a successful stream ends with `data: [DONE]`.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from contracts.answers import AnswerError, RuleBroken, expect_answer
from contracts.api import AUTOMATION, CHAT, EMBEDDINGS, SPEC, STREAM_MEDIA_TYPE
from contracts.chat_budget import NOT_ALLOWED
from contracts.runtime import Run
from contracts.sse import Events, check_events
from openapi import Operation

HELLO = [{"role": "user", "content": "hello"}]


# The gateway's 403 for a chat that needs a new session while automation is off (the spec's example).
def _example_detail(operation: Operation, status: str, example: str) -> str:
    """The `detail` of one of the spec's examples of an operation's answer."""
    tokens = ("paths", operation.path, operation.method.lower(), "responses", status, "content", "application/json")
    return str(SPEC.pointer(SPEC.locate(*tokens, "examples", example, "value", "detail")))


AUTOMATION_OFF = _example_detail(CHAT, "403", "automationDisabled")
EMBEDDINGS_AUTOMATION_OFF = _example_detail(EMBEDDINGS, "500", "automationDisabled")
NO_DURATION_CONTROL = (
    "a chat-opened session lasts the key's automation duration (3600 s by default): checking it needs the "
    "target's admin clock and automation settings (the mock's), not an hour's wait"
)


def need_chat(run: Run, requests_wanted: int, what: str) -> None:
    """Skip the test, saying why, unless the run may send `requests_wanted` more chat requests."""
    if not run.settings.chat_allowed:
        pytest.skip(NOT_ALLOWED)
    if not run.chats.room(requests_wanted):
        pytest.skip(f"the chat cap ({run.chats.cap}) leaves no room for {what}: raise --max-chats")


def chat_body(model: str | None, *, stream: bool = False, session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": HELLO}
    if model is not None:
        body["model"] = model
    if stream:
        body["stream"] = True
    if session_id is not None:
        body["session_id"] = session_id
    return body


def embeddings_body(model: str | None, *, session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"input": "hello"}
    if model is not None:
        body["model"] = model
    if session_id is not None:
        body["session_id"] = session_id
    return body


def is_stream(response: requests.Response) -> bool:
    return response.headers.get("content-type", "").startswith(STREAM_MEDIA_TYPE)


def expect_stream(response: requests.Response, *, rule: str | None = None, ends: str = "done") -> Events:
    """Check a streamed chat answer event by event; `ends` is "done" (a success: `data: [DONE]` last),
    "error" (an error frame last, no `[DONE]`) or "either". Returns the events."""
    if response.status_code != 200 or not is_stream(response):
        message = (
            f"{CHAT.label} with stream: true answered {response.status_code} "
            f"{response.headers.get('content-type', 'without a content type')}, expected a 200 {STREAM_MEDIA_TYPE}: "
            f"{response.text[:200]}"
        )
        raise RuleBroken(rule, message) if rule else AnswerError(message)
    return check_events(response.text, ends)


def expect_chat(response: requests.Response, *, stream: bool, rule: str) -> Any:
    """A successful chat: the JSON completion, or a stream that ends with `[DONE]`."""
    if stream:
        return expect_stream(response, rule=rule)
    return expect_answer(CHAT, response, rule=rule)


def automation_path(key: str) -> str:
    """The mock's admin path of a key's automation setting."""
    return AUTOMATION.path.replace("{prefix}", key[:9])


def refused_for_automation(operation: Operation, response: requests.Response) -> bool:
    """The gateway's answer for a request that needed a new session while automation is off: chat's 403,
    embeddings' 500 (their exact texts)."""
    status, detail = (403, AUTOMATION_OFF) if operation is CHAT else (500, EMBEDDINGS_AUTOMATION_OFF)
    if response.status_code != status or is_stream(response):
        return False
    answered: Any = expect_answer(operation, response, status=status)
    return bool(answered == {"detail": detail})
