"""The `morpheus_mock` fixture as a user's test sees it (this suite loads the plugin by its entry point too)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.testclient import TestClient

from mockserver.config import Config, SelfCheck, fixture_settings
from mockserver.pytest_plugin import _MARKER_KEYWORDS, _from_marker
from mockserver.testing import (
    DEFAULT_KEY,
    MockOptions,
    MockTestingError,
    MorpheusMock,
    ServedMock,
    Switchboard,
    build_mock,
    make_key,
)
from openapi import load_spec

MODEL_SESSION = "/api/v1/session/modelsession"
BODY = {"sessionDuration": 3600, "directPayment": False, "failover": False}


def open_session(mock: MorpheusMock, key: str | None = None, model: str = "mistral-31-24b") -> requests.Response:
    return requests.post(
        f"{mock.url}{MODEL_SESSION}", params={"model_id": model}, json=BODY, headers=mock.headers(key), timeout=10
    )


def test_the_fixture_serves_a_mock_with_a_key_and_urls(morpheus_mock: MorpheusMock) -> None:
    assert morpheus_mock.url.startswith("http://127.0.0.1:")
    assert morpheus_mock.api_base == morpheus_mock.url + "/api/v1"
    assert morpheus_mock.key == DEFAULT_KEY == make_key(0)
    assert repr(morpheus_mock) == f"MorpheusMock({morpheus_mock.url!r}, keys=1)"
    created = open_session(morpheus_mock)
    assert created.status_code == 200
    assert morpheus_mock.session() == {**morpheus_mock.session(), "session_id": created.json()["session_id"]}  # type: ignore[dict-item]
    assert [entry["operation_id"] for entry in morpheus_mock.journal(morpheus_mock.key)] == [
        "create_model_session_api_v1_session_modelsession_post"
    ]


def test_each_test_starts_clean(morpheus_mock: MorpheusMock) -> None:
    assert morpheus_mock.session() is None
    assert morpheus_mock.journal() == []
    assert morpheus_mock.faults == []
    assert morpheus_mock.keys == (DEFAULT_KEY,)


def test_more_keys_on_demand_are_distinct_and_accepted(morpheus_mock: MorpheusMock) -> None:
    second = morpheus_mock.new_key()
    assert second == make_key(1)
    assert second[:9] != morpheus_mock.key[:9]
    assert morpheus_mock.keys == (DEFAULT_KEY, second)
    assert open_session(morpheus_mock, second).json()["api_key_prefix"] == second[:9]
    assert morpheus_mock.session(morpheus_mock.key) is None


def test_a_fault_as_a_context_manager_is_cleared_when_the_block_ends(morpheus_mock: MorpheusMock) -> None:
    with morpheus_mock.fault("create_fail", key=morpheus_mock.key) as fault:
        assert repr(fault) == f"ArmedFault('create_fail', key={morpheus_mock.key[:9]!r})"
        assert fault.armed["remaining"] is None
        assert open_session(morpheus_mock).status_code == 500
        assert open_session(morpheus_mock).status_code == 500
    assert morpheus_mock.faults == []
    assert open_session(morpheus_mock).status_code == 200


def test_a_fault_for_one_call_with_real_retry_headers(morpheus_mock: MorpheusMock) -> None:
    """What the SDKs send: x-stainless-retry-count 0, 1, 2 for the tries of one call."""
    morpheus_mock.fault("create_fail", count=1, retries=True)

    def attempt(number: int, **headers: str) -> int:
        sent = {**morpheus_mock.headers(), "x-stainless-retry-count": str(number), **headers}
        reply = requests.post(f"{morpheus_mock.url}{MODEL_SESSION}?model_id=m", json=BODY, headers=sent, timeout=10)
        return reply.status_code

    assert [attempt(0), attempt(1), attempt(2), attempt(0)] == [500, 500, 500, 200]
    morpheus_mock.fault("close_error", count=1, retries=True)
    close = f"{morpheus_mock.url}/api/v1/session/closesession"
    tries = [
        requests.post(close, headers={**morpheus_mock.headers(), "Idempotency-Key": key}, timeout=10).status_code
        for key in ("a", "a", "b")
    ]
    assert tries == [500, 500, 200]


def test_faults_can_be_listed_and_cleared(morpheus_mock: MorpheusMock) -> None:
    morpheus_mock.fault("ping_dead", count=2)
    morpheus_mock.fault("close_fail", key=morpheus_mock.key, duration=60)
    assert [fault["kind"] for fault in morpheus_mock.faults] == ["ping_dead", "close_fail"]
    assert morpheus_mock.clear_faults("ping_dead") == 1
    assert morpheus_mock.clear_faults(key=morpheus_mock.key) == 1
    assert morpheus_mock.clear_faults() == 0


def test_an_unknown_fault_kind_names_the_kinds(morpheus_mock: MorpheusMock) -> None:
    with pytest.raises(MockTestingError, match="unknown fault kind 'crash'; the kinds are: create_fail, "):
        morpheus_mock.fault("crash")


def test_the_clock_moves_and_sessions_expire(morpheus_mock: MorpheusMock) -> None:
    open_session(morpheus_mock)
    start = morpheus_mock.clock.now()
    assert morpheus_mock.clock.advance(3601) == pytest.approx(start + 3601, abs=1)
    ping = requests.post(f"{morpheus_mock.url}/api/v1/session/pingsession", headers=morpheus_mock.headers(), timeout=10)
    assert ping.json()["status"] == "expired"
    assert morpheus_mock.history(morpheus_mock.key)[0]["close_reason"] == "expired"
    assert morpheus_mock.clock.set(2_000_000_000) == pytest.approx(2_000_000_000, abs=1)


def test_reset_forgets_sessions_and_the_journal(morpheus_mock: MorpheusMock) -> None:
    open_session(morpheus_mock)
    morpheus_mock.reset()
    assert (morpheus_mock.session(), morpheus_mock.history(), morpheus_mock.journal()) == (None, [], [])


def test_the_in_process_variant_has_an_asgi_app_and_no_server(morpheus_mock_asgi: MorpheusMock) -> None:
    assert morpheus_mock_asgi.url == "http://morpheus-mock.test"
    with TestClient(morpheus_mock_asgi.app, base_url=morpheus_mock_asgi.url) as client:
        reply = client.post(MODEL_SESSION, params={"model_id": "m"}, json=BODY, headers=morpheus_mock_asgi.headers())
    assert reply.status_code == 200
    assert morpheus_mock_asgi.session() is not None


def test_a_request_between_two_tests_is_an_error_not_a_stale_answer() -> None:
    import asyncio

    with pytest.raises(MockTestingError, match="between two tests"):
        asyncio.run(Switchboard()({"type": "http"}, _never, _never))


async def _never(*args: object) -> Any:
    raise AssertionError("not called")


def test_a_server_that_cannot_start_says_so() -> None:
    server = ServedMock()

    async def refuse(sockets: object = None) -> None:  # as uvicorn does when it cannot start: it gives up
        server.server.should_exit = True

    server.server.startup = refuse  # type: ignore[method-assign]
    with pytest.raises(MockTestingError, match="did not start"):
        server.start(timeout=5)


@pytest.mark.parametrize("into_the_minute", [0.0, 30.25, 59.75])
def test_expiry_reads_the_same_whatever_minute_a_test_runs_in(into_the_minute: float) -> None:
    """Each test's clock starts 1 s after one of the gateway's 60 s sync passes: a 600 s session, the clock moved
    601 s, is `expired` (the pass that retires it comes later), whether the test ran at 12:00:00 or 12:00:59."""
    wall = [1_800_000_000.0 + into_the_minute]
    mock = build_mock(MockOptions(), "http://morpheus-mock.test", load_spec(), now=lambda: wall[0])
    assert mock.clock.now() == 1_800_000_001.0  # up to a minute behind the wall clock, never ahead of it by more
    with TestClient(mock.app, base_url=mock.url) as client:
        body = {**BODY, "sessionDuration": 600}
        assert client.post(MODEL_SESSION, params={"model_id": "m"}, json=body, headers=mock.headers()).is_success
        wall[0] += 0.5  # the test's own time passes too
        mock.clock.advance(601)
        assert mock.session()["expired"] is True  # type: ignore[index]
        mock.clock.advance(60)  # the next pass retires it
        assert mock.session() is None


def test_the_fixture_takes_the_settings_of_the_option_table_with_their_defaults() -> None:
    """`MockOptions` and the marker are the fixture's rows of `Config`'s table: same names, same defaults (the
    mock's, but the fixture's own pause: a test does not wait out the gateway's 1-3 s unless it asks to)."""
    settings = fixture_settings()
    assert list(_MARKER_KEYWORDS) == [setting.keyword for setting in settings]
    defaults = {each.name: each.default for each in fields(MockOptions)}
    assert defaults == {setting.field: setting.default for setting in settings}
    assert defaults["retry_pause"] is False
    assert Config().retry_pause is True
    assert MockOptions().config() == Config(
        keys=(DEFAULT_KEY,), admin=True, self_check=SelfCheck.RAISE, retry_pause=False
    )


def test_a_marker_file_of_none_leaves_the_configured_one_and_others_are_relative_to_the_test(tmp_path: Path) -> None:
    settings = _from_marker({"models": None, "bids": "bids.json", "seed": "3", "automation": 0}, tmp_path)
    assert settings == {"bids_file": tmp_path / "bids.json", "seed": 3, "automation": False}
