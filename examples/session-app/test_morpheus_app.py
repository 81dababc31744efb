"""The application's tests, against the kit's mock gateway (the `morpheus_mock` fixture of its pytest plugin)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx2
import openai
import pytest
from morpheus_app import MorpheusSessions

from mockserver.testing import MorpheusMock

MODEL = "mistral-31-24b"
CREATE = "create_model_session_api_v1_session_modelsession_post"


@pytest.fixture
def app(morpheus_mock: MorpheusMock) -> Iterator[MorpheusSessions]:
    with MorpheusSessions(morpheus_mock.api_base, morpheus_mock.key) as sessions:
        yield sessions


def test_a_session_is_opened_once_and_reused(app: MorpheusSessions, morpheus_mock: MorpheusMock) -> None:
    assert MODEL in app.models()
    first = app.open(MODEL)
    assert app.open(MODEL) == first  # R1
    assert morpheus_mock.session()["session_id"] == first  # type: ignore[index]
    assert [entry["status"] for entry in morpheus_mock.journal()] == [200, 200, 200]


def test_exactly_one_sdk_call_fails_whatever_its_retries(app: MorpheusSessions, morpheus_mock: MorpheusMock) -> None:
    with morpheus_mock.fault("create_fail", count=1, retries=True):
        with pytest.raises(openai.InternalServerError) as failed:
            app.open(MODEL)
        assert "provider unavailable" in failed.value.response.json()["detail"]
        assert [entry["status"] for entry in morpheus_mock.journal()] == [500, 500, 500]  # the SDK tried 3 times
        assert app.open(MODEL).startswith("0x")  # the next call goes through
    assert morpheus_mock.faults == []


def test_a_session_expires_when_the_clock_moves(app: MorpheusSessions, morpheus_mock: MorpheusMock) -> None:
    app.open(MODEL, duration=600)
    assert app.status() == "alive"
    morpheus_mock.clock.advance(601)
    assert app.status() == "expired"
    assert morpheus_mock.session() is None
    assert morpheus_mock.history()[0]["close_reason"] == "expired"


@pytest.mark.morpheus_mock(keys=["sk-Other1." + "ab" * 32])
def test_the_marker_sets_the_keys(morpheus_mock: MorpheusMock) -> None:
    with MorpheusSessions(morpheus_mock.api_base, "sk-Other1." + "ab" * 32) as app:
        assert app.open(MODEL).startswith("0x")
    with (
        MorpheusSessions(morpheus_mock.api_base, "sk-Wrong1." + "ab" * 32) as app,
        pytest.raises(openai.AuthenticationError),
    ):
        app.open(MODEL)


def test_in_process_through_httpx_asgi_transport(morpheus_mock_asgi: MorpheusMock) -> None:
    async def scenario() -> str:
        transport = httpx2.ASGITransport(app=morpheus_mock_asgi.app)
        async with httpx2.AsyncClient(transport=transport, base_url=morpheus_mock_asgi.url) as http:
            client = openai.AsyncOpenAI(
                base_url=morpheus_mock_asgi.api_base, api_key=morpheus_mock_asgi.key, http_client=http
            )
            reply = await client.post(
                "/session/modelsession",
                cast_to=object,
                body={"sessionDuration": 3600, "directPayment": False, "failover": False},
                options={"params": {"model_id": MODEL}},
            )
            return str(reply["session_id"])  # type: ignore[index]

    assert asyncio.run(scenario()) == morpheus_mock_asgi.session()["session_id"]  # type: ignore[index]


def test_chat_answers_on_the_keys_session(app: MorpheusSessions, morpheus_mock: MorpheusMock) -> None:
    morpheus_mock.queue_reply("Paris.")
    assert app.ask("Capital of France?", MODEL) == "Paris."
    session = morpheus_mock.session()
    assert session is not None
    assert app.ask("And of Italy?", MODEL, stream=True)  # a streamed answer, on the same session
    assert morpheus_mock.session() == session
    assert app.status() == "alive"


def test_a_stream_that_breaks_raises(app: MorpheusSessions, morpheus_mock: MorpheusMock) -> None:
    morpheus_mock.queue_reply("a long answer that breaks", break_after=2)
    with pytest.raises(openai.APIError, match="Failed to create chat completions stream"):
        app.ask("?", MODEL, stream=True)


def test_embeddings_replace_the_chat_session(app: MorpheusSessions, morpheus_mock: MorpheusMock) -> None:
    app.ask("hi", MODEL)
    chat_session = morpheus_mock.session()
    [vector] = app.embed(["hello"])
    assert len(vector) == 8
    assert morpheus_mock.session() != chat_session


def test_chat_without_automation_is_refused(app: MorpheusSessions, morpheus_mock: MorpheusMock) -> None:
    morpheus_mock.automation(enabled=False)
    with pytest.raises(openai.PermissionDeniedError):
        app.ask("?", MODEL)
    app.open(MODEL)  # a session opened by modelsession needs no automation, and chat reuses it
    assert app.ask("?", MODEL)
