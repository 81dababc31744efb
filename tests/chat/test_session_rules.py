"""Rules C1-C6: chat completions and embeddings on the key's one session, in-process (observed-v1.14.0.md 7)."""

from __future__ import annotations

from starlette.testclient import TestClient

from mockserver.domain import FakeClock, immediate
from tests.chat.helpers import UNKNOWN_SESSION, automation, chat, embed, session, session_id
from tests.conftest import KEY2, ClientFactory
from tests.web.helpers import close, model_session, ping

AUTOMATION_OFF = "Session automation is disabled. Please enable it in your Account settings to use Chat."


def test_c1_modelsession_then_chat_reuses_the_session_unchanged(client: TestClient, clock: FakeClock) -> None:
    opened = model_session(client).json()["session_id"]
    before = session(client)
    immediate(clock.advance(100))
    assert chat(client).status_code == 200
    assert chat(client, model="").status_code == 200  # "" resolves to the default model: the same session
    assert session(client) == before  # not extended (C6)
    assert ping(client).json()["session_id"] == opened


def test_c1_chat_opens_then_modelsession_and_chat_reuse_it(client: TestClient) -> None:
    assert chat(client, model="qwen3-235b").status_code == 200
    opened = session_id(client)
    assert model_session(client, "qwen3-235b").json()["session_id"] == opened  # observed 7.17
    assert chat(client, model=None).status_code == 200  # no model: the default, another model (C2)
    assert session_id(client) != opened


def test_c2_chat_on_another_model_replaces_the_session_and_ping_and_close_show_it(client: TestClient) -> None:
    first = model_session(client).json()["session_id"]
    assert chat(client, model="llama-3.3-70b").status_code == 200
    second = session_id(client)
    assert second != first
    assert ping(client).json() == {
        "status": "alive",
        "message": "Session is alive",
        "session_id": second,
        "success": True,
    }
    assert close(client).json()["session_id"] == second
    history = client.get("/__admin/history").json()["sessions"]
    assert {entry["session_id"] for entry in history} == {first, second}


def test_c4_chat_then_embeddings_reopens_and_back_again(client: TestClient) -> None:
    opened = []
    for call in (chat, embed, chat):
        assert call(client).status_code == 200
        opened.append(session_id(client))
    assert len(set(opened)) == 3  # observed 7.14: each switch of type closes the previous session


def test_c4_an_embeddings_model_named_by_chat_is_reused_by_embeddings(client: TestClient) -> None:
    assert chat(client, model="text-embedding-bge-m3").status_code == 200
    opened = session_id(client)
    assert embed(client).status_code == 200
    assert embed(client, model=None).status_code == 200  # the embeddings default is that model too
    assert session_id(client) == opened  # observed 7.10


def test_c3_the_duration_is_the_keys_automation_setting(client: TestClient, clock: FakeClock) -> None:
    assert automation(client, duration=600).json()["duration"] == 600
    chat(client)
    found = session(client)
    assert found is not None
    assert found["expires_at"] - found["created_at"] == 600
    immediate(clock.advance(601))
    chat(client)
    assert session_id(client) != found["session_id"]  # expired (R6): a new one


def test_c3_a_duration_the_chain_refuses_fails_the_open(client: TestClient) -> None:
    automation(client, duration=120)
    answer = chat(client)
    assert answer.status_code == 500
    assert answer.json() == {
        "detail": 'Error handling session: Failed to create session: HTTP 500: {"error":"SessionTooShort"}'
    }
    assert session(client) is None


def test_c3_automation_off_refuses_chat_403_and_embeddings_500_and_a_stream_gets_json(client: TestClient) -> None:
    automation(client, enabled=False)
    assert chat(client).json() == {"detail": AUTOMATION_OFF}
    streamed = chat(client, stream=True)
    assert (streamed.status_code, streamed.headers["content-type"]) == (403, "application/json")
    refused = embed(client)
    assert (refused.status_code, refused.json()) == (500, {"detail": f"Error handling session: {AUTOMATION_OFF}"})
    assert ping(client).json()["status"] == "no_session"


def test_c3_automation_off_system_wide_by_flag(make_client: ClientFactory) -> None:
    client = make_client(automation=False)
    assert chat(client).status_code == 403
    assert client.get("/__admin/keys/sk-AbC123/automation").json() == {
        "prefix": "sk-AbC123",
        "enabled": True,
        "duration": 3600,
        "system": False,
        "effective": False,
    }
    opened = model_session(client).json()["session_id"]  # a duration > 0 skips automation
    assert chat(client).status_code == 200  # reuse needs no automation (observed 7.3)
    assert session_id(client) == opened


def test_c3_a_refused_switch_leaves_the_closed_session_active(make_client: ClientFactory) -> None:
    """Observed 7.1 and 7.2: the old session is closed on chain, the row rolled back, so it is dead."""
    client = make_client(automation=False)
    opened = model_session(client).json()["session_id"]
    assert chat(client, model="llama-3.3-70b").status_code == 403
    assert chat(client).json() == {
        "error": {"message": 'HTTP 500: {"error":"session expired"}', "type": "server_error"}
    }
    dead = ping(client).json()
    assert (dead["status"], dead["session_id"]) == ("dead", opened)
    assert ping(client).json()["status"] == "no_session"


def test_c5_a_body_session_id_is_used_blindly(client: TestClient) -> None:
    opened = model_session(client).json()["session_id"]
    unknown = chat(client, model="llama-3.3-70b", session_id=UNKNOWN_SESSION)
    assert unknown.json() == {"error": {"message": 'HTTP 500: {"error":"session not found"}', "type": "server_error"}}
    assert session_id(client) == opened  # neither consulted nor changed
    other = chat(client, key=KEY2, session_id=opened)  # another key's session: no ownership check
    assert other.status_code == 200
    assert session_id(client, "sk-XyZ789") is None


def test_c5_empty_and_null_session_ids_count_as_absent(client: TestClient) -> None:
    chat(client, session_id="")
    opened = session_id(client)
    chat(client, session_id=None)
    assert opened is not None
    assert session_id(client) == opened


def test_c5_automation_off_does_not_stop_a_body_session_id(client: TestClient) -> None:
    automation(client, enabled=False)
    assert chat(client, session_id=UNKNOWN_SESSION).status_code == 500  # observed 7.5: no 403
    refused = embed(client, session_id=UNKNOWN_SESSION)
    assert refused.json() == {"detail": 'Embeddings request failed: HTTP 500: {"error":"session not found"}'}


def test_c6_a_failed_chat_leaves_the_session_as_it_was(client: TestClient) -> None:
    chat(client)
    before = session(client)
    client.post("/__admin/faults", json={"kind": "chat_upstream_error", "status": 400, "count": 2})
    assert chat(client).status_code == 400  # both of the gateway's attempts
    assert session(client) == before


def test_revoked_keys_get_401_on_chat_even_with_revoked_keys_work(make_client: ClientFactory) -> None:
    client = make_client(revoked_keys_work=True)
    client.post("/__admin/keys/sk-AbC123/revoke")
    assert model_session(client).status_code == 200  # the session routes keep the historical behaviour
    for answer in (chat(client), embed(client)):
        assert (answer.status_code, answer.json()) == (401, {"detail": "Invalid API key"})
        assert answer.headers["www-authenticate"] == "Bearer"
