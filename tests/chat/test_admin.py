"""The admin API's chat controls: per-key automation and the provider's reply queue; refusals are one line."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.chat.helpers import PREFIX, automation, queue


def test_automation_setting_is_read_and_changed_field_by_field(client: TestClient) -> None:
    assert client.get(f"/__admin/keys/{PREFIX}/automation").json()["effective"] is True
    assert automation(client, enabled=False).json()["effective"] is False
    changed = automation(client, duration=86400).json()
    assert (changed["enabled"], changed["duration"]) == (False, 86400)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, 'send {"enabled": true|false} and/or {"duration": 60-86400}'),
        ({"enabled": True, "other": 1}, 'send {"enabled": true|false} and/or {"duration": 60-86400}'),
        ({"enabled": "no"}, "'enabled' must be true or false"),
        ({"duration": True}, "'duration' must be an integer (seconds, 60-86400)"),
        ({"duration": 59}, "duration must be 60-86400 seconds, got 59"),
    ],
)
def test_bad_automation_settings_are_refused(client: TestClient, body: dict[str, Any], detail: str) -> None:
    answer = automation(client, **body)
    assert (answer.status_code, answer.json()["detail"]) == (422, detail)


def test_automation_of_an_unknown_key_is_a_404(client: TestClient) -> None:
    for answer in (client.get("/__admin/keys/sk-Nobody/automation"), automation(client, "sk-Nobody", enabled=True)):
        assert answer.status_code == 404
        assert answer.json()["detail"].startswith("no API key with the prefix 'sk-Nobody' is registered")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"contents": "x"}, "unknown fields: contents;"),
        ({"key": "sk-Nobody"}, "no API key with the prefix 'sk-Nobody' is registered"),
        ({"content": 3}, "'content' must be a str"),
        ({"break_after": True}, "'break_after' must be a int"),
        ({"error": {"body": "x"}}, "'error' must be"),
        ({"error": "500"}, "'error' must be"),
        ({"error": {"status": 200}}, "error status must be 400-599, got 200"),
        ({"break_after": -1}, "break_after must be 0 or more, got -1"),
        ({"chunk_delay": 11}, "chunk_delay must be 0-10 seconds, got 11.0"),
        ({"chunk_delay": "1"}, "'chunk_delay' must be a number >= 0"),
        ({"tool_calls": []}, "'tool_calls' must be a non-empty list"),
        ({"tool_calls": ["f"]}, "'tool_calls' must be a non-empty list"),
        ({"tool_calls": [{"arguments": {}}]}, "each tool call needs a 'name'"),
        ({"tool_calls": [{"name": "f", "extra": 1}]}, "each tool call needs a 'name'"),
        ({"tool_calls": [{"name": "f", "arguments": 3}]}, "a tool call's 'arguments' must be an object or a JSON text"),
    ],
)
def test_bad_replies_are_refused(client: TestClient, body: dict[str, Any], detail: str) -> None:
    answer = queue(client, **body)
    assert answer.status_code == 422
    assert detail in answer.json()["detail"]
    assert client.get("/__admin/replies").json() == {"replies": []}


def test_a_queued_reply_is_listed_as_queued(client: TestClient) -> None:
    queued = queue(client, error={"status": 503, "body": "down"}, break_after=1, chunk_delay=0.5).json()
    assert queued == {
        "key": None,
        "content": None,
        "tool_calls": [],
        "finish_reason": None,
        "error": {"status": 503, "body": "down"},
        "break_after": 1,
        "chunk_delay": 0.5,
        "raw_body": None,
    }
