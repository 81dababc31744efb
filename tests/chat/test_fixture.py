"""The pytest fixture's chat controls: reply queuing and automation, as a user's tests call them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

from mockserver.domain import WallSleeper
from mockserver.testing import MorpheusMock


@pytest.fixture
def sdk(morpheus_mock: MorpheusMock) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=morpheus_mock.key, base_url=morpheus_mock.api_base, max_retries=0) as client:
        yield client


def test_a_queued_reply_is_what_the_sdk_gets(morpheus_mock: MorpheusMock, sdk: openai.OpenAI) -> None:
    morpheus_mock.queue_reply("Paris.")
    morpheus_mock.queue_reply(tool_calls=[("lookup", '{"q": "x"}')], key=morpheus_mock.key)
    assert [reply["content"] for reply in morpheus_mock.replies] == ["Paris.", None]
    client = sdk
    first = client.chat.completions.create(model="mistral-31-24b", messages=[{"role": "user", "content": "?"}])
    second = client.chat.completions.create(model="mistral-31-24b", messages=[{"role": "user", "content": "?"}])
    assert first.choices[0].message.content == "Paris."
    assert second.choices[0].message.tool_calls is not None
    assert second.choices[0].message.tool_calls[0].function.name == "lookup"  # type: ignore[union-attr]
    assert morpheus_mock.replies == []


def test_automation_per_key(morpheus_mock: MorpheusMock, sdk: openai.OpenAI) -> None:
    assert morpheus_mock.automation(enabled=False) == {"enabled": False, "duration": 3600, "system": True}
    with pytest.raises(openai.PermissionDeniedError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "?"}])
    assert morpheus_mock.automation(duration=600, enabled=True)["duration"] == 600


@pytest.mark.morpheus_mock(automation=False)
def test_automation_off_system_wide_by_marker(morpheus_mock: MorpheusMock, sdk: openai.OpenAI) -> None:
    assert morpheus_mock.automation()["system"] is False
    with pytest.raises(openai.PermissionDeniedError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "?"}])


def test_the_gateways_retry_absorbs_one_failure_without_its_pause(
    morpheus_mock: MorpheusMock, sdk: openai.OpenAI
) -> None:
    morpheus_mock.queue_reply(raw_body="")  # a 200 the gateway cannot use: its 500, not retried
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model="mistral-31-24b", messages=[{"role": "user", "content": "?"}])
    started = time.monotonic()
    with morpheus_mock.fault("chat_upstream_error", count=1):
        answer = sdk.chat.completions.create(model="mistral-31-24b", messages=[{"role": "user", "content": "?"}])
    assert answer.choices[0].message.content
    assert time.monotonic() - started < 1.0  # the fixture skips the gateway's 1 s pause unless asked
    assert [entry["upstream"] for entry in morpheus_mock.journal()] == [(500, 200), (200,)]


@pytest.mark.morpheus_mock(retry_pause=True)
def test_the_real_pause_by_marker(morpheus_mock: MorpheusMock) -> None:
    assert isinstance(morpheus_mock.app.state.mock.sleeper, WallSleeper)
