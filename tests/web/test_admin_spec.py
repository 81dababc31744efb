"""The admin API is served from openapi/admin.yaml as the gateway is from morpheus.yaml: its handler table is
checked at start-up, its requests validated from the spec and its answers self-checked against it."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from mockserver.config import SelfCheck
from mockserver.web import admin
from mockserver.web.admin import ADMIN_HANDLERS, AdminCall, Answer
from mockserver.web.errors import RouteTableError, SelfCheckFailed
from mockserver.web.state import MockState
from tests.conftest import ClientFactory


def test_a_handler_without_an_admin_operation_stops_the_mock(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers = {**ADMIN_HANDLERS, "extra_get": ADMIN_HANDLERS["get_state"]}
    del handlers["clear_journal"]
    monkeypatch.setattr(admin, "ADMIN_HANDLERS", handlers)
    with pytest.raises(
        RouteTableError, match=r"admin.yaml and handlers disagree: .*\['clear_journal'\].*\['extra_get'\]"
    ):
        make_client()


async def _broken(state: MockState, call: AdminCall) -> Answer:
    return 200, {"now": "noon", "iso": 3}


async def _undocumented(state: MockState, call: AdminCall) -> Answer:
    return 418, {"teapot": True}


def test_an_answer_admin_yaml_forbids_is_caught_by_the_self_check(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ADMIN_HANDLERS, "get_clock", _broken)
    monkeypatch.setitem(ADMIN_HANDLERS, "list_keys", _undocumented)
    client = make_client()
    with pytest.raises(SelfCheckFailed, match=r"get_clock answered 200(.|\n)*\$\.now: 'noon' is not of type 'number'"):
        client.get("/__admin/clock")
    with pytest.raises(SelfCheckFailed, match="list_keys answered 418"):
        client.get("/__admin/keys")


def test_a_served_mock_logs_what_the_self_check_finds_and_answers(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(ADMIN_HANDLERS, "get_clock", _broken)
    with caplog.at_level(logging.ERROR, logger="mockserver"):
        answer = make_client(self_check=SelfCheck.LOG).get("/__admin/clock")
    assert answer.json() == {"now": "noon", "iso": 3}
    assert "get_clock answered 200" in caplog.text
    assert make_client(self_check=SelfCheck.OFF).get("/__admin/clock").status_code == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'kind' must be one of create_fail, verify_fail,"),
        ({"kind": "ping_dead", "status": 200}, "status must be an HTTP error status (400-599), got 200"),
        ({"kind": "ping_dead", "count": 0}, "count must be at least 1 (or omitted for a fault that lasts), got 0"),
        ({"kind": "ping_dead", "message": 1}, "'message' must be a str"),
        ({"kind": "create_fail", "status": 500, "body": 1}, "'body' must be a str"),
    ],
)
def test_fault_requests_are_refused_in_the_specs_words(client: TestClient, body: object, detail: str) -> None:
    refused = client.post("/__admin/faults", json=body)
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith(detail)


def test_a_scenario_name_of_blanks_is_refused(client: TestClient) -> None:
    refused = client.put("/__admin/recording/scenario", json={"name": "  "})
    assert (refused.status_code, refused.json()["detail"]) == (
        422,
        'the body must be {"name": "<scenario>"} or {"name": null}',
    )
    assert client.put("/__admin/recording/scenario", json={"name": " checkout "}).json()["name"] == "checkout"
    assert client.get("/__admin/recording/scenario").json() == {"name": "checkout", "recording": False}
