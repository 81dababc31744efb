"""The suite's judgement of odd answers, in-process: undocumented statuses, non-JSON bodies, the
Schemathesis checks' verdicts, redaction, and the teardown's closes against a target that misbehaves."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from contracts.answers import RuleBroken, body_errors, expect
from contracts.api import CHAT, CLOSE, MODEL_SESSION, PING
from contracts.checks import body_matches_the_gateway_contract, server_errors_are_the_gateways
from contracts.client import Client
from contracts.redact import redact, shown
from contracts.safety import Ledger, close_all
from tests.live import LiveServer

KEY = "sk-AbC123." + "0123456789abcdef" * 4


def _answer(status: int, content: bytes, content_type: str = "application/json") -> Any:
    """A Schemathesis response as its checks read it: status, multi-valued headers, raw content."""
    return SimpleNamespace(status_code=status, content=content, headers={"Content-Type": [content_type]})


def _case(operation_id: str | None) -> Any:
    raw = {} if operation_id is None else {"operationId": operation_id}
    return SimpleNamespace(operation=SimpleNamespace(definition=SimpleNamespace(raw=raw)))


def test_a_broken_expectation_names_its_rule() -> None:
    expect(True, "R1", "never raised")
    with pytest.raises(RuleBroken, match=r"^R2 broken: the old session stayed$") as broken:
        expect(False, "R2", "the old session stayed")
    assert broken.value.rule == "R2"


def test_an_undocumented_status_is_one_body_error_at_the_root() -> None:
    (error,) = body_errors(PING.operation_id, 418, {"detail": "teapot"})
    assert (error.path, error.keyword) == ("$", "status")
    assert f"status 418 is not documented for {PING.operation_id}" in error.message


def test_the_body_check_judges_only_documented_json_answers() -> None:
    ping = _case(PING.operation_id)
    assert body_matches_the_gateway_contract(None, _answer(200, b"alive", "text/plain"), ping) is True
    assert body_matches_the_gateway_contract(None, _answer(200, b"{}"), _case(None)) is True
    assert body_matches_the_gateway_contract(None, _answer(405, b'{"detail": "Method Not Allowed"}'), ping) is True
    with pytest.raises(AssertionError, match="breaks the contract"):
        body_matches_the_gateway_contract(None, _answer(200, b"{not json"), ping)


def test_a_500_must_carry_one_of_the_gateways_texts() -> None:
    create = _case(MODEL_SESSION.operation_id)
    assert server_errors_are_the_gateways(None, _answer(422, b"{}"), create) is True
    gateway = b'{"detail": "Error from proxy router: Failed to create session: SessionTooShort"}'
    assert server_errors_are_the_gateways(None, _answer(500, gateway), create) is None
    upstream = b'{"error": {"message": "provider down", "type": "upstream_error"}}'  # chat's: the body check's
    assert server_errors_are_the_gateways(None, _answer(500, upstream), _case(CHAT.operation_id)) is None
    for body in (b"<html>Internal Server Error</html>", b'{"detail": "boom"}', b'{"detail": ["x"]}'):
        with pytest.raises(AssertionError, match="500 with a body the gateway never sends"):
            server_errors_are_the_gateways(None, _answer(500, body), create)


def test_redaction_cuts_known_and_key_shaped_values_to_their_prefix() -> None:
    other = "sk-Zz9Zz9." + "f" * 64
    assert redact(f"a {KEY} b", ["", KEY]) == "a sk-AbC123… b"
    assert shown({"key": other}) == "{'key': 'sk-Zz9Zz9…'}"


def _closing(answer: Response) -> Starlette:
    async def close(request: Request) -> Response:
        return answer

    return Starlette(routes=[Route(CLOSE.path, close, methods=["POST"])])


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (PlainTextResponse("closed"), "not JSON"),
        (JSONResponse({"success": True, "message": 7, "session_id": None}), "breaks the contract"),
        (JSONResponse({"detail": "Invalid API key"}, status_code=401), None),
    ],
)
def test_the_teardown_reports_a_close_it_could_not_trust(answer: Response, problem: str | None) -> None:
    """Each key's close at the end of a run is checked; a bad answer is a problem named by key prefix,
    a key the target refuses (401) is not."""
    with LiveServer(_closing(answer)) as server:
        client = Client(server.url, (KEY,), None)
        problems = close_all(client, Ledger(cap=None), (KEY,))
    if problem is None:
        assert problems == []
        return
    (reported,) = problems
    assert reported.startswith("sk-AbC123…: ")
    assert problem in reported
    assert KEY not in reported


def test_the_teardown_reports_a_target_that_went_away() -> None:
    with LiveServer(_closing(JSONResponse({}))) as server:
        url = server.url
    problems = close_all(Client(url, (KEY,), None), Ledger(cap=None), (KEY,))
    assert problems == ["sk-AbC123…: ConnectionError"]


def test_a_create_whose_200_is_not_json_opens_nothing_in_the_ledger() -> None:
    async def create(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route(MODEL_SESSION.path, create, methods=["POST"])])
    ledger = Ledger(cap=2)
    with LiveServer(app) as server:
        client = Client(server.url, (KEY,), None)
        client.session.listeners.append(ledger.observe)
        response = client.post(MODEL_SESSION.path, key=KEY, params={"model_id": "m"})
    assert response.status_code == 200
    assert ledger.opened == set()
    assert ledger.keys_used == {KEY}
