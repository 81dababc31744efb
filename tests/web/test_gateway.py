"""Gateway details over HTTP: routing, headers, auth answers, models list, faults, self-check, route table."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver.config import Config, SelfCheck
from mockserver.domain import immediate
from mockserver.web import handlers
from mockserver.web.app import create_app, http_error
from mockserver.web.errors import HandlerMisuse, RouteTableError, SelfCheckFailed
from mockserver.web.handlers import Reply
from openapi import Spec, load_spec, thaw
from tests.conftest import KEY, ClientFactory
from tests.web.helpers import SESSION, approve, arm, auth, bid_session, close, model_session, ping

TOO_SHORT = 'Error from proxy router: Failed to create session: HTTP 500: {"error":"SessionTooShort"}'
BID_TOO_SHORT = TOO_SHORT.replace("create session", "create bid session")


def test_every_response_carries_x_process_time(client: TestClient) -> None:
    for response in (
        model_session(client),
        client.post("/nope"),
        client.get(f"{SESSION}/pingsession"),
        ping(client, key="x"),
    ):
        assert re.fullmatch(r"[0-9.e-]+", response.headers["x-process-time"])


def test_the_models_list_needs_no_key_and_lists_the_model_table(client: TestClient) -> None:
    response = client.get("/api/v1/models")
    assert response.status_code == 200
    names = [model["id"] for model in response.json()["data"]]
    assert names[:2] == ["mistral-31-24b", "llama-3.3-70b"]


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "API key missing"),
        ("", "API key missing"),
        (f"bearer {KEY}", "Invalid API key format. Must start with sk-"),
        (f"Bearer  {KEY}", "Invalid API key format. Must start with sk-"),
        ("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "Invalid API key format. Must start with sk-"),
        ("sk-AbC123", "Invalid API key"),
        (KEY[:-1] + "0", "Invalid API key"),
    ],
    ids=["missing", "empty", "lower-bearer", "two-spaces", "jwt", "prefix-only", "wrong-secret"],
)
def test_auth_failures_are_401_with_www_authenticate(
    client: TestClient, authorization: str | None, detail: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post(f"{SESSION}/pingsession", headers=headers)
    assert (response.status_code, response.json()) == (401, {"detail": detail})
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization", [KEY, f"Bearer {KEY}", f"Bearer Bearer {KEY}"], ids=["bare", "bearer", "twice"]
)
def test_accepted_header_forms(client: TestClient, authorization: str) -> None:
    assert client.post(f"{SESSION}/pingsession", headers={"Authorization": authorization}).status_code == 200


def test_accept_any_key_takes_every_well_formed_key(make_client: ClientFactory) -> None:
    client = make_client(keys=(), accept_any_key=True)
    stranger = "sk-Strang.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    assert model_session(client, key=stranger).json()["api_key_prefix"] == "sk-Strang"
    assert model_session(client, key="sk-Strang.notwellformed").status_code == 401


def test_durations_under_the_chains_minimum_fail_as_the_proxy_router(client: TestClient) -> None:
    response = model_session(client, sessionDuration=299)
    assert (response.status_code, response.json()) == (500, {"detail": TOO_SHORT})
    assert model_session(client, sessionDuration=300).status_code == 200


AUTOMATION_OFF = {
    "detail": "Unexpected error: Session automation is disabled. Please enable it in your Account settings to use Chat."
}


def test_a_zero_duration_modelsession_follows_the_keys_automation_setting(make_client: ClientFactory) -> None:
    """v1.14.0 reads `sessionDuration: 0` as "the key's automation setting" (gateway-behaviour.md, the
    modelsession body; session_service.py:151-167): its duration, or a 500 when automation is off."""
    client = make_client()
    client.put("/__admin/keys/sk-AbC123/automation", json={"duration": 900}).raise_for_status()
    assert model_session(client, sessionDuration=0).status_code == 200
    session = client.get("/__admin/state/sk-AbC123").json()["session"]
    assert session["expires_at"] - session["created_at"] == 900
    client.put("/__admin/keys/sk-AbC123/automation", json={"enabled": False}).raise_for_status()
    assert model_session(client, sessionDuration=0).status_code == 200  # the same model: reused, no check
    switch = model_session(client, "llama-3.3-70b", sessionDuration=0)
    assert (switch.status_code, switch.json()) == (500, AUTOMATION_OFF)
    assert ping(client).json()["status"] == "dead"  # closed on chain first, still the key's row (observed 4.1)
    assert model_session(client, "llama-3.3-70b", sessionDuration=300).status_code == 200  # a duration: no check
    system_off = make_client(automation=False)
    answer = model_session(system_off, sessionDuration=0)
    assert (answer.status_code, answer.json()) == (500, AUTOMATION_OFF)
    assert ping(system_off).json()["status"] == "no_session"


def test_a_zero_duration_bidsession_reaches_the_chain_which_refuses_it(client: TestClient) -> None:
    """bidsession has no automation branch (session/index.py:203): the 0 is sent upstream as given, and the
    chain refuses any duration under 300 s (SessionTooShort, the 500 of a 299 s bid)."""
    zero, short = bid_session(client, sessionDuration=0), bid_session(client, sessionDuration=299)
    assert (zero.status_code, zero.json()) == (short.status_code, short.json()) == (500, {"detail": BID_TOO_SHORT})


def test_the_minimum_duration_is_configurable(make_client: ClientFactory) -> None:
    assert model_session(make_client(min_session_duration=0), sessionDuration=1).status_code == 200


def test_without_the_fallback_key_there_is_no_note(make_client: ClientFactory) -> None:
    client = make_client(fallback_key_note=False)
    assert "note" not in bid_session(client).json()
    assert "note" not in approve(client).json()


def test_create_fault_fails_a_switch_and_the_old_session_stays_active_but_dead(client: TestClient) -> None:
    old = model_session(client).json()["session_id"]
    arm(client, "create_fail", count=1, message="provider down")
    failed = model_session(client, "llama-3.3-70b")
    assert (failed.status_code, failed.json()) == (
        500,
        {"detail": 'Error from proxy router: Failed to create session: HTTP 500: {"error":"provider down"}'},
    )
    assert (ping(client).json()["status"], ping(client).json()["status"]) == ("dead", "no_session")
    assert model_session(client).json()["session_id"] != old


def test_create_fault_on_bidsession(client: TestClient) -> None:
    arm(client, "create_fail")
    failed = bid_session(client)
    assert failed.status_code == 500
    assert failed.json()["detail"].startswith("Error from proxy router: Failed to create bid session: HTTP 500: ")


def test_verify_fault(client: TestClient) -> None:
    arm(client, "verify_fail", count=1)
    failed = model_session(client)
    assert failed.json() == {"detail": "Unexpected error: 500: Session created but not valid in proxy router"}
    assert ping(client).json()["status"] == "no_session"


def test_close_fault_leaves_the_session_active(client: TestClient) -> None:
    opened = model_session(client).json()["session_id"]
    arm(client, "close_fail", count=1)
    failed = close(client)
    assert (failed.status_code, failed.json()) == (
        500,
        {"detail": "Error closing session: 500: Failed to close session"},
    )
    assert ping(client).json()["session_id"] == opened
    assert close(client).json()["message"] == "Session closed successfully"


def test_ping_dead_fault_closes_the_session(client: TestClient) -> None:
    opened = model_session(client).json()["session_id"]
    arm(client, "ping_dead", message="No response received from chat completion")
    assert ping(client).json() == {
        "status": "dead",
        "message": "Session is dead and has been closed",
        "session_id": opened,
        "success": False,
        "error": "No response received from chat completion",
    }
    assert close(client).json()["session_id"] is None


def test_ping_error_fault(client: TestClient) -> None:
    arm(client, "ping_error", message="database is locked")
    assert ping(client).json() == {
        "status": "error",
        "message": "Error checking session status: database is locked",
        "success": False,
    }


def test_approve_answers_a_tx_or_its_error_with_200(client: TestClient) -> None:
    assert re.fullmatch(r"0x[0-9a-f]{64}", approve(client).json()["tx"])
    arm(client, "approve_error", count=1)
    failed = approve(client)
    assert failed.status_code == 200
    assert failed.json()["error"] == {
        "message": 'HTTP 500: {"error":"insufficient funds for gas"}',
        "type": "server_error",
    }


def test_faults_for_one_key_leave_other_keys_alone(client: TestClient) -> None:
    from tests.conftest import KEY2

    arm(client, "create_fail", key="sk-XyZ789")
    assert model_session(client).status_code == 200
    assert model_session(client, key=KEY2).status_code == 500


def test_latency_fault_delays_the_answer(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def stays(receive: object, seconds: float) -> bool:
        slept.append(seconds)
        return False

    monkeypatch.setattr("mockserver.web.pipeline.client_left", stays)
    arm(client, "latency", seconds=0.25, operation="ping_session_api_v1_session_pingsession_post")
    ping(client)
    model_session(client)
    assert slept == [0.25]


def test_latency_waits_before_the_state_changes(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def leaves(receive: object, seconds: float) -> bool:
        return True

    monkeypatch.setattr("mockserver.web.pipeline.client_left", leaves)
    arm(client, "latency", seconds=5, count=1)
    assert model_session(client).status_code == 499  # the client left during the delay
    assert client.get("/__admin/state").json()["keys"] == []  # and its session was never opened
    assert client.get("/__admin/journal").json()["entries"][1]["status"] == 499
    assert model_session(client).status_code == 200  # the fault was used once


def test_latency_ends_early_when_the_client_disconnects() -> None:
    from mockserver.web.pipeline import client_left

    messages: Iterator[dict[str, object]] = iter([{"type": "http.request", "body": b""}, {"type": "http.disconnect"}])

    async def receive() -> dict[str, object]:
        return next(messages)

    async def quiet() -> dict[str, object]:
        await asyncio.sleep(10)
        return {"type": "http.disconnect"}  # pragma: no cover - never reached

    assert asyncio.run(client_left(receive, 10)) is True
    assert asyncio.run(client_left(quiet, 0.01)) is False


def test_seeded_mocks_hand_out_the_same_ids(make_client: ClientFactory) -> None:
    first = model_session(make_client(seed=11)).json()["session_id"]
    assert model_session(make_client(seed=11)).json()["session_id"] == first
    assert model_session(make_client(seed=12)).json()["session_id"] != first


async def _broken(state: Any, call: Any) -> Reply:
    return Reply(200, {"status": "alive", "message": "Session is alive", "success": True})


def test_self_check_raises_in_tests(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handlers.HANDLERS, "ping_session_api_v1_session_pingsession_post", _broken)
    broken = TestClient(create_app(Config(keys=(KEY,), self_check=SelfCheck.RAISE)))
    with pytest.raises(SelfCheckFailed, match=r"\$: 'session_id' is a required property"):
        ping(broken)


def test_self_check_logs_when_serving(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(handlers.HANDLERS, "ping_session_api_v1_session_pingsession_post", _broken)
    serving = TestClient(create_app(Config(keys=(KEY,), self_check=SelfCheck.LOG)))
    with caplog.at_level(logging.ERROR, logger="mockserver"):
        assert ping(serving).status_code == 200
    assert "self-check: ping_session_api_v1_session_pingsession_post answered 200" in caplog.text


def test_self_check_off(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(handlers.HANDLERS, "ping_session_api_v1_session_pingsession_post", _broken)
    quiet = TestClient(create_app(Config(keys=(KEY,), self_check=SelfCheck.OFF)))
    assert ping(quiet).status_code == 200
    assert "self-check" not in caplog.text


def test_an_operation_without_a_handler_stops_the_start() -> None:
    document = thaw(load_spec().document)
    document["paths"]["/api/v1/extra"] = {
        "get": {"operationId": "extra_get", "responses": {"200": {"description": "x"}}}
    }
    del document["paths"]["/api/v1/models"]
    with pytest.raises(
        RouteTableError, match=r"without a handler: \['extra_get'\].*without an operation: \['list_models"
    ):
        create_app(Config(), spec=Spec(document, name="edited.yaml"))


def test_unexpected_domain_errors_are_500_unexpected_error(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from mockserver.domain import DomainError

    async def explode(state: Any, call: Any) -> Reply:
        raise DomainError("database is locked")

    monkeypatch.setitem(handlers.HANDLERS, "close_session_api_v1_session_closesession_post", explode)
    broken = TestClient(create_app(Config(keys=(KEY,), self_check=SelfCheck.RAISE)))
    assert close(broken).json() == {"detail": "Unexpected error: database is locked"}


def test_cors_preflight_allows_the_gateways_headers(client: TestClient) -> None:
    response = client.options(
        f"{SESSION}/modelsession",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert response.status_code == 200
    assert "Authorization" in response.headers["access-control-allow-headers"]


def test_a_body_that_cannot_be_decoded_is_400(client: TestClient) -> None:
    response = client.post(
        f"{SESSION}/modelsession",
        params={"model_id": "m"},
        content=b'{"sessionDuration": "\xff"}',
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()) == (400, {"detail": "There was an error parsing the body"})


def test_a_system_clock_cannot_be_moved(make_client: ClientFactory) -> None:
    from mockserver.domain import SystemClock

    # a clock that cannot move is what this test is about: the type says a moveable one
    client = TestClient(create_app(Config(admin=True), clock=SystemClock()))  # type: ignore[arg-type]
    response = client.post("/__admin/clock/advance", json={"seconds": 1})
    assert response.status_code == 409
    assert response.json()["title"] == "Clock not controllable"


def test_latency_before_the_change_on_the_full_stack_too(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def leaves(receive: object, seconds: float) -> bool:
        return True

    monkeypatch.setattr("mockserver.web.pipeline.client_left", leaves)
    arm(client, "latency", seconds=5, count=1)
    cors = {"Origin": "https://app.example", **auth()}
    answer = client.post("/api/v1/session/modelsession", params={"model_id": "m"}, json={}, headers=cors)
    assert answer.status_code == 499  # the request with an Origin took the full stack (CORS), same answer
    assert client.get("/__admin/state").json()["keys"] == []


def test_a_client_gone_before_its_body_arrived_is_journaled_as_499(make_client: ClientFactory) -> None:
    app = make_client().app
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/session/modelsession",
        "query_string": b"model_id=m",
        "headers": [(b"content-length", b"80"), (b"authorization", f"Bearer {KEY}".encode())],
    }

    async def gone() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    async def serve() -> None:
        await app(scope, gone, send)

    asyncio.run(serve())
    assert sent[0]["status"] == 499
    assert immediate(app.state.mock.journal.entries())[0]["status"] == 499  # type: ignore[attr-defined]


def test_a_handler_called_without_a_key_or_a_body_says_so_instead_of_guessing() -> None:
    state = create_app(Config(seed=1)).state.mock
    no_key = handlers.Call("pingSession", None)
    with pytest.raises(HandlerMisuse, match="runs only after authentication"):
        immediate(handlers.ping_session_api_v1_session_pingsession_post(state, no_key))
    no_body = handlers.Call("createModelSession", KEY, query={"model_id": "m"})
    with pytest.raises(HandlerMisuse, match="takes a validated body"):
        immediate(handlers.create_model_session_api_v1_session_modelsession_post(state, no_body))


def test_the_not_found_answer_leaves_other_errors_to_starlette() -> None:
    failure = ValueError("not an HTTPException")
    with pytest.raises(ValueError, match="not an HTTPException"):
        asyncio.run(http_error(None, failure))  # type: ignore[arg-type]
