"""The pytest fixture's chat controls: reply queuing and automation, as a user's tests call them."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

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
