"""The session rules R1-R7 over HTTP against the in-process mock (R8 is in test_served.py)."""

from __future__ import annotations

from starlette.testclient import TestClient

from mockserver.domain import FakeClock, immediate
from tests.conftest import KEY2
from tests.web.helpers import bid_session, close, model_session, ping

DEFAULT_ID = "0x8e5c0a7b3f9d2e1c6a4b8f0d3e7c9a1b5f2d6e0c4a8b3f7d1e9c5a2b6f0d4e8c"
PREFIX = "sk-AbC123"


def _session(client: TestClient, key: str = PREFIX) -> dict[str, object] | None:
    session: dict[str, object] | None = client.get(f"/__admin/state/{key}").json()["session"]
    return session


def test_r1_same_model_returns_the_same_session_unchanged(client: TestClient, clock: FakeClock) -> None:
    first = model_session(client).json()
    before = _session(client)
    immediate(clock.advance(100))
    second = model_session(client, sessionDuration=99999).json()
    assert second == first
    assert _session(client) == before  # same expiry: not extended, sessionDuration ignored


def test_r1_model_name_id_and_unknown_all_resolve_to_the_default_model(client: TestClient) -> None:
    by_name = model_session(client, "mistral-31-24b").json()
    by_id = model_session(client, DEFAULT_ID).json()
    unknown = model_session(client, "no-such-model").json()
    empty = model_session(client, "").json()
    assert by_name["session_id"] == by_id["session_id"] == unknown["session_id"] == empty["session_id"]
    assert [body["model"] for body in (by_name, by_id, unknown, empty)] == [
        "mistral-31-24b",
        DEFAULT_ID,
        "no-such-model",
        "",
    ]


def test_r2_another_model_closes_the_old_session_and_opens_a_new_one(client: TestClient) -> None:
    old = model_session(client).json()["session_id"]
    new = model_session(client, "llama-3.3-70b").json()["session_id"]
    assert new != old
    assert ping(client).json()["session_id"] == new
    history = client.get("/__admin/history", params={"key": PREFIX}).json()["sessions"]
    assert [(s["session_id"], s["close_reason"]) for s in history] == [(old, "switched")]


def test_r3_bidsession_deactivates_the_old_session_and_opens_a_new_one(client: TestClient) -> None:
    old = model_session(client).json()["session_id"]
    bid = bid_session(client, "0xbid").json()
    assert bid["session_id"] != old
    assert bid["note"] == "Private Key not set, using fallback key (FOR DEBUGGING ONLY)"
    history = client.get("/__admin/history", params={"key": PREFIX}).json()["sessions"]
    assert [(s["session_id"], s["close_reason"]) for s in history] == [(old, "deactivated")]
    # A bid session is never on a model: the next modelsession replaces it.
    assert model_session(client).json()["session_id"] not in (old, bid["session_id"])


def test_r3_a_new_bid_replaces_a_bid_session_even_for_the_same_bid(client: TestClient) -> None:
    assert bid_session(client, "0xbid").json()["session_id"] != bid_session(client, "0xbid").json()["session_id"]


def test_r4_close_reports_none_closed_and_expired(client: TestClient, clock: FakeClock) -> None:
    assert close(client).json() == {"success": True, "message": "No active session found to close", "session_id": None}
    opened = model_session(client).json()["session_id"]
    assert close(client).json() == {"success": True, "message": "Session closed successfully", "session_id": opened}
    assert close(client).json()["session_id"] is None
    expiring = model_session(client).json()["session_id"]
    immediate(clock.advance(3600.001))
    assert close(client).json() == {
        "success": True,
        "message": "Expired session marked as inactive",
        "session_id": expiring,
    }
    assert _session(client) is None


def test_r5_ping_reports_no_session_alive_and_expired(client: TestClient, clock: FakeClock) -> None:
    assert ping(client).json() == {
        "status": "no_session",
        "message": "No active session found for this API key",
        "success": False,
    }
    opened = model_session(client).json()["session_id"]
    assert ping(client).json() == {
        "status": "alive",
        "message": "Session is alive",
        "session_id": opened,
        "success": True,
    }
    immediate(clock.advance(3601))
    assert ping(client).json() == {
        "status": "expired",
        "message": "Session is expired and has been marked as inactive",
        "session_id": opened,
        "success": False,
    }
    assert ping(client).json()["status"] == "no_session"


def test_r6_expiry_is_strictly_after_created_plus_duration(client: TestClient, clock: FakeClock) -> None:
    opened = model_session(client, sessionDuration=600).json()["session_id"]
    immediate(clock.advance(600))
    assert ping(client).json()["status"] == "alive"
    assert model_session(client).json()["session_id"] == opened
    immediate(clock.advance(0.001))
    assert model_session(client).json()["session_id"] != opened  # expired counts as none
    history = client.get("/__admin/history").json()["sessions"]
    assert history[0]["close_reason"] == "expired"


def test_r6_zero_duration_means_the_automation_default(client: TestClient) -> None:
    model_session(client, sessionDuration=0)
    session = _session(client)
    assert session is not None
    assert session["expires_at"] - session["created_at"] == 3600  # type: ignore[operator]


def test_r7_keys_are_isolated(client: TestClient) -> None:
    mine = model_session(client).json()["session_id"]
    theirs = model_session(client, key=KEY2).json()
    assert theirs["session_id"] != mine
    assert theirs["api_key_prefix"] == "sk-XyZ789"
    close(client, key=KEY2)
    bid_session(client, key=KEY2)
    assert ping(client).json()["session_id"] == mine
    assert close(client).json()["session_id"] == mine
    assert ping(client, key=KEY2).json()["status"] == "alive"
