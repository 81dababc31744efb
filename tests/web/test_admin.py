"""The /__admin control API (openapi/admin.yaml): state, keys, clock, faults, journal; off by default."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver.domain import FakeClock
from openapi import ADMIN_SPEC_PATH, Validators, load_spec
from tests.conftest import KEY, KEY2, ClientFactory
from tests.web.helpers import approve, arm, auth, close, model_session, ping

ADMIN = Validators(load_spec(ADMIN_SPEC_PATH))
NEW_KEY = "sk-NewKey." + "0123456789abcdef" * 4


def _conforms(operation_id: str, response: Any) -> Any:
    media = response.headers["content-type"]
    assert ADMIN.body_errors(operation_id, response.status_code, response.json(), media) == []
    return response.json()


def test_admin_is_off_unless_enabled(make_client: ClientFactory) -> None:
    client = make_client(admin=False)
    assert client.get("/__admin/state").status_code == 404


def test_admin_token_is_required_when_set(make_client: ClientFactory) -> None:
    client = make_client(admin_token="s3cret")
    refused = client.get("/__admin/state")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert _conforms("get_state", refused)["detail"] == "send the admin token in the x-admin-token header"
    assert client.get("/__admin/state", headers={"X-Admin-Token": "wrong"}).status_code == 401
    assert client.get("/__admin/state", headers={"X-Admin-Token": "s3cret"}).status_code == 200


def test_state_lists_every_key_and_resets(client: TestClient) -> None:
    model_session(client)
    model_session(client, key=KEY2)
    state = _conforms("get_state", client.get("/__admin/state"))
    assert [entry["key"] for entry in state["keys"]] == ["sk-AbC123", "sk-XyZ789"]
    assert _conforms("reset_key_state", client.delete("/__admin/state/sk-XyZ789")) == {"reset": "sk-XyZ789"}
    assert _conforms("get_key_state", client.get("/__admin/state/sk-XyZ789"))["session"] is None
    assert client.get("/__admin/state/sk-AbC123").json()["session"] is not None
    assert _conforms("reset_state", client.delete("/__admin/state")) == {"reset": "all"}
    assert client.get("/__admin/state").json()["keys"] == []
    journal = client.get("/__admin/journal").json()["entries"]
    assert [(e["method"], e["path"]) for e in journal] == [("GET", "/__admin/state"), ("DELETE", "/__admin/state")]


def test_state_shows_both_views_and_a_sync_pass_runs_on_demand(client: TestClient) -> None:
    first = model_session(client).json()["session_id"]
    failed = model_session(client, "llama-3.3-70b", sessionDuration=299)
    assert failed.status_code == 500
    state = _conforms("get_key_state", client.get("/__admin/state/sk-AbC123"))
    assert (state["session"]["session_id"], state["session"]["open_on_chain"], state["chain"]) == (first, False, [])
    assert _conforms("run_sync", client.post("/__admin/sync", json={"key": "sk-XyZ789"}))["retired"] == 0
    assert _conforms("run_sync", client.post("/__admin/sync"))["retired"] == 1
    assert client.get("/__admin/state/sk-AbC123").json()["session"] is None
    assert client.get("/__admin/history").json()["sessions"][0]["close_reason"] == "chain_closed"
    for wrong in ({"key": 1}, {"keys": "sk-AbC123"}):
        refused = client.post("/__admin/sync", json=wrong)
        assert _conforms("run_sync", refused)["detail"] == 'send {} (every key) or {"key": "sk-XXXXXX"}'


def test_state_lists_sessions_left_open_on_chain(client: TestClient) -> None:
    model_session(client)
    model_session(client, "llama-3.3-70b", sessionDuration=10**12)  # opened on chain, then the date overflows
    (state,) = _conforms("get_state", client.get("/__admin/state"))["keys"]
    assert state["session"]["open_on_chain"] is False  # the switch closed it before the overflow
    assert [(s["model"], s["in_gateway"]) for s in state["chain"]] == [
        ("0x2f6d1e9c5a2b6f0d4e8c8e5c0a7b3f9d2e1c6a4b8f0d3e7c9a1b5f2d6e0c4a8b", False)
    ]


def test_history_keeps_ended_sessions_newest_first(client: TestClient) -> None:
    first = model_session(client).json()["session_id"]
    second = model_session(client, "llama-3.3-70b").json()["session_id"]
    close(client)
    history = _conforms("get_history", client.get("/__admin/history", params={"limit": "5"}))
    assert [(s["session_id"], s["close_reason"]) for s in history["sessions"]] == [
        (second, "closed"),
        (first, "switched"),
    ]
    assert len(client.get("/__admin/history", params={"limit": "1"}).json()["sessions"]) == 1


@pytest.mark.parametrize("limit", ["0", "-1", "x"])
def test_a_bad_limit_is_a_problem(client: TestClient, limit: str) -> None:
    response = client.get("/__admin/journal", params={"limit": limit})
    assert response.status_code == 422
    assert _conforms("get_journal", response)["detail"] == "'limit' must be an integer >= 1"


def test_keys_can_be_added_listed_and_revoked(client: TestClient) -> None:
    assert model_session(client, key=NEW_KEY).status_code == 401
    assert _conforms("add_key", client.post("/__admin/keys", json={"key": NEW_KEY})) == {"prefix": "sk-NewKey"}
    assert model_session(client, key=NEW_KEY).status_code == 200
    listed = _conforms("list_keys", client.get("/__admin/keys"))
    assert {"prefix": "sk-NewKey", "legacy": False, "revoked": False, "orphan": False} in listed["keys"]
    assert NEW_KEY not in client.get("/__admin/keys").text
    assert _conforms("revoke_key", client.post("/__admin/keys/sk-NewKey/revoke")) == {
        "prefix": "sk-NewKey",
        "revoked": True,
    }
    refused = model_session(client, key=NEW_KEY)
    assert (refused.status_code, refused.json()) == (401, {"detail": "Invalid API key"})


def test_revoked_keys_still_work_in_the_historical_mode(make_client: ClientFactory) -> None:
    client = make_client(revoked_keys_work=True)
    client.post("/__admin/keys/sk-AbC123/revoke")
    assert model_session(client).status_code == 200


def test_legacy_keys_are_checked_by_prefix_only(client: TestClient) -> None:
    assert _conforms("add_key", client.post("/__admin/keys", json={"legacy_prefix": "sk-Legacy"})) == {
        "prefix": "sk-Legacy"
    }
    assert ping(client, key="sk-Legacy.anything-at-all").status_code == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"key": "sk-short"}, "is not well-formed"),
        ({"nope": 1}, 'send {"key": "sk-..."} or {"legacy_prefix": "sk-XXXXXX"}'),
        ([1], "the body must be a JSON object"),
    ],
)
def test_bad_key_requests_are_problems(client: TestClient, body: Any, detail: str) -> None:
    response = client.post("/__admin/keys", json=body)
    assert response.status_code == 422
    assert detail in _conforms("add_key", response)["detail"]
    assert KEY not in response.text


def test_revoking_an_unknown_key_is_a_404_problem(client: TestClient) -> None:
    response = client.post("/__admin/keys/sk-Nobody/revoke")
    assert response.status_code == 404
    _conforms("revoke_key", response)


def test_invalid_json_is_a_problem(client: TestClient) -> None:
    response = client.post("/__admin/clock/advance", content=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert _conforms("advance_clock", response)["detail"].startswith("the body is not JSON")


def test_clock_can_be_read_set_and_advanced(client: TestClient, clock: FakeClock) -> None:
    assert _conforms("get_clock", client.get("/__admin/clock"))["now"] == clock.now()
    assert _conforms("set_clock", client.put("/__admin/clock", json={"now": 1_800_000_000}))["now"] == 1_800_000_000
    moved = _conforms("advance_clock", client.post("/__admin/clock/advance", json={"seconds": 60}))
    assert moved == {"now": 1_800_000_060, "iso": "2027-01-15T08:01:00+00:00"}


@pytest.mark.parametrize("body", [{"seconds": -1}, {"seconds": "1"}, {"seconds": True}, {}])
def test_clock_refuses_bad_seconds(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/__admin/clock/advance", json=body)
    assert response.status_code == 422
    assert _conforms("advance_clock", response)["detail"] == "'seconds' must be a number >= 0"


def test_advancing_the_clock_expires_sessions(client: TestClient) -> None:
    model_session(client)
    client.post("/__admin/clock/advance", json={"seconds": 3601})
    assert ping(client).json()["status"] == "expired"


def test_faults_are_armed_listed_and_cleared(client: TestClient) -> None:
    armed = _conforms("arm_fault", client.post("/__admin/faults", json={"kind": "close_fail", "key": "sk-AbC123"}))
    assert armed["kind"] == "close_fail"
    arm(client, "ping_dead", count=2)
    listed = _conforms("list_faults", client.get("/__admin/faults"))
    assert [fault["kind"] for fault in listed["faults"]] == ["close_fail", "ping_dead"]
    assert _conforms("clear_faults", client.delete("/__admin/faults", params={"kind": "ping_dead"})) == {"cleared": 1}
    assert client.delete("/__admin/faults").json() == {"cleared": 1}
    assert client.get("/__admin/faults").json() == {"faults": []}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"kind": "nope"}, "'kind' must be one of"),
        ({"kind": "ping_dead", "count": "2"}, "'count' must be a int"),
        ({"kind": "ping_dead", "count": True}, "'count' must be a int"),
        ({"kind": "ping_dead", "count": 0}, "count"),
        ({"kind": "latency", "seconds": -2}, "'seconds' must be a number >= 0"),
        ({"kind": "ping_dead", "colour": "red"}, "unknown fields: colour"),
        ({"kind": "ping_dead", "key": "sk-Nobody"}, "no API key with the prefix 'sk-Nobody' is registered"),
        ({"kind": "ping_dead", "key": "sk-AbC123.secret"}, "no API key with the prefix 'sk-AbC123'"),
        ({"kind": "latency", "seconds": 1, "operation": "ping"}, "'operation' must be one of"),
    ],
)
def test_bad_fault_requests_are_problems(client: TestClient, body: dict[str, Any], detail: str) -> None:
    response = client.post("/__admin/faults", json=body)
    assert response.status_code == 422
    assert detail in _conforms("arm_fault", response)["detail"]


def test_a_fault_for_a_key_not_seen_yet_is_armed_when_any_key_is_accepted(make_client: ClientFactory) -> None:
    client = make_client(accept_any_key=True)
    assert client.post("/__admin/faults", json={"kind": "ping_dead", "key": "sk-Later1"}).status_code == 201
    assert client.post("/__admin/faults", json={"kind": "ping_dead", "key": "sk-bad"}).status_code == 422


@pytest.mark.parametrize(
    ("path", "body", "operation_id"),
    [
        ("/__admin/clock", {"now": 2.6e11}, "set_clock"),
        ("/__admin/clock/advance", {"seconds": 1e300}, "advance_clock"),
    ],
)
def test_a_time_no_clock_can_show_is_a_problem_and_moves_nothing(
    client: TestClient, clock: FakeClock, path: str, body: dict[str, Any], operation_id: str
) -> None:
    before = clock.now()
    response = client.request("PUT" if operation_id == "set_clock" else "POST", path, json=body)
    assert response.status_code == 422
    assert _conforms(operation_id, response)["detail"].startswith("clock time must be between 0 and 253402300799")
    assert clock.now() == before


def test_clearing_an_unknown_fault_kind_is_a_problem(client: TestClient) -> None:
    assert client.delete("/__admin/faults", params={"kind": "nope"}).status_code == 422


def test_the_journal_shows_keys_by_prefix_only(client: TestClient) -> None:
    model_session(client)
    approve(client)
    client.post("/api/v1/session/pingsession", headers={"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.x.y"})
    client.post("/nope")
    journal = _conforms("get_journal", client.get("/__admin/journal"))
    entries = journal["entries"]
    assert [(e["operation_id"], e["key"], e["status"]) for e in entries] == [
        (None, None, 404),
        ("ping_session_api_v1_session_pingsession_post", None, 401),
        ("approve_spending_api_v1_session_approve_post", "sk-AbC123", 200),
        ("create_model_session_api_v1_session_modelsession_post", "sk-AbC123", 200),
    ]
    assert entries[2]["query"] == "amount=10"
    assert KEY not in client.get("/__admin/journal").text
    assert len(client.get("/__admin/journal", params={"key": "sk-AbC123", "limit": "1"}).json()["entries"]) == 1
    assert _conforms("clear_journal", client.delete("/__admin/journal")) == {"cleared": 7}


def test_admin_routes_answer_405_with_every_allowed_method(client: TestClient) -> None:
    response = client.patch("/__admin/faults", headers=auth())
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST", "DELETE", "HEAD"}
