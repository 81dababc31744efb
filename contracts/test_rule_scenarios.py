"""One fixed scenario per session rule, beside the state machine: short, deterministic, named by rule."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import runtime
from contracts.checks import assert_body_conforms
from contracts.machine import RuleBroken, discover_models

RUN = runtime.current()
SESSION = "/api/v1/session"
KEY = RUN.keys[0]
MODELS = sorted(name for name in discover_models(RUN)[0] if not name.startswith("0x"))
OPERATION_IDS = {
    "modelsession": "create_model_session_api_v1_session_modelsession_post",
    "bidsession": "create_bid_session_api_v1_session_bidsession_post",
    "pingsession": "ping_session_api_v1_session_pingsession_post",
    "closesession": "close_session_api_v1_session_closesession_post",
}


def _call(action: str, **params: str) -> dict[str, Any]:
    body = {"sessionDuration": RUN.settings.session_duration} if action.endswith("session") else None
    response = RUN.client.post(f"{SESSION}/{action}", key=KEY, params=params, json=body if params else None)
    assert response.status_code == 200, f"{action}: {response.status_code} {response.text[:200]}"
    answer: dict[str, Any] = response.json()
    assert_body_conforms(OPERATION_IDS[action], 200, answer)
    return answer


def _expect(condition: bool, rule: str, message: str) -> None:
    if not condition:
        raise RuleBroken(rule, message)


@pytest.fixture(autouse=True)
def no_session() -> None:
    if not MODELS:
        pytest.skip("the target lists no models")
    RUN.fresh(KEY)
    if RUN.settings.session_cap is not None and len(RUN.ledger.opened) + 3 > RUN.settings.session_cap:
        pytest.skip(f"the session cap ({RUN.settings.session_cap}) is reached")


@pytest.mark.contract(rules=("R1",), operations=(f"POST {SESSION}/modelsession",))
def test_r1_the_same_model_returns_the_same_session() -> None:
    first = _call("modelsession", model_id=MODELS[0])["session_id"]
    again = _call("modelsession", model_id=MODELS[0])["session_id"]
    _expect(again == first, "R1", f"a second modelsession on {MODELS[0]} returned {again}, not the key's {first}")


@pytest.mark.contract(rules=("R2",), operations=(f"POST {SESSION}/modelsession",))
def test_r2_another_model_replaces_the_session() -> None:
    if len(MODELS) < 2:
        pytest.skip("the target lists one model: a switch needs two")
    old = _call("modelsession", model_id=MODELS[0])["session_id"]
    new = _call("modelsession", model_id=MODELS[1])["session_id"]
    _expect(new != old, "R2", f"modelsession on {MODELS[1]} kept the session of {MODELS[0]} ({old})")
    ping = _call("pingsession")
    _expect(ping.get("session_id") == new, "R2", f"after the switch, ping reports {ping}, not the new session {new}")


@pytest.mark.contract(rules=("R3",), operations=(f"POST {SESSION}/bidsession",))
def test_r3_a_bid_session_replaces_the_session() -> None:
    if not RUN.bids:
        pytest.skip("no bid ids: pass --bid-id to let the run open bid sessions")
    old = _call("modelsession", model_id=MODELS[0])["session_id"]
    new = _call("bidsession", bid_id=RUN.bids[0])["session_id"]
    ping = _call("pingsession")
    _expect(new != old and ping.get("session_id") == new, "R3", f"after bidsession ({new}), ping reports {ping}")


@pytest.mark.contract(rules=("R4",), operations=(f"POST {SESSION}/closesession",))
def test_r4_close_ends_the_session() -> None:
    opened = _call("modelsession", model_id=MODELS[0])["session_id"]
    closed = _call("closesession")
    _expect(
        closed == {"success": True, "message": "Session closed successfully", "session_id": opened},
        "R4",
        f"close answered {closed}",
    )
    ping = _call("pingsession")
    _expect(ping["status"] == "no_session", "R4", f"after a successful close, ping still reports {ping}")
    again = _call("closesession")
    _expect(again["session_id"] is None, "R4", f"a second close found a session: {again}")


@pytest.mark.contract(rules=("R5",), operations=(f"POST {SESSION}/pingsession",))
def test_r5_a_dead_session_is_closed() -> None:
    if not RUN.controls_faults:
        pytest.skip("R5's dead path needs the mock's admin faults (a real provider cannot be made to fail)")
    opened = _call("modelsession", model_id=MODELS[0])["session_id"]
    _expect(_call("pingsession")["status"] == "alive", "R5", "a fresh session must ping alive")
    RUN.client.post("/__admin/faults", json={"kind": "ping_dead", "key": KEY[:9], "count": 1})
    dead = _call("pingsession")
    _expect((dead["status"], dead.get("session_id")) == ("dead", opened), "R5", f"the armed dead ping answered {dead}")
    after = _call("pingsession")
    _expect(after["status"] == "no_session", "R5", f"a dead session must be closed, ping now says {after}")


@pytest.mark.contract(rules=("R6",), operations=(f"POST {SESSION}/pingsession", f"POST {SESSION}/modelsession"))
def test_r6_an_expired_session_counts_as_none() -> None:
    if not RUN.controls_time:
        pytest.skip("R6 needs the mock's admin clock")
    opened = _call("modelsession", model_id=MODELS[0])["session_id"]
    RUN.client.post("/__admin/clock/advance", json={"seconds": RUN.settings.session_duration + 60})
    expired = _call("pingsession")
    # `no_session` once the gateway's 60-second sync has retired the expired row (observed-v1.14.0.md 1.5).
    _expect(
        (expired["status"], expired.get("session_id")) in {("expired", opened), ("no_session", None)},
        "R6",
        f"ping after expiry: {expired}",
    )
    fresh = _call("modelsession", model_id=MODELS[0])["session_id"]
    _expect(fresh != opened, "R6", f"modelsession after expiry returned the expired session {opened}")
