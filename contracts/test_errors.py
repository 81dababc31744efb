"""Documented error answers the suite can provoke without harm to a target."""

from __future__ import annotations

import pytest

from contracts import runtime
from contracts.checks import assert_body_conforms
from contracts.machine import discover_models

RUN = runtime.current()
SESSION = "/api/v1/session"
MODEL_SESSION = "create_model_session_api_v1_session_modelsession_post"


@pytest.mark.contract(operations=(f"POST {SESSION}/modelsession",))
def test_a_duration_the_chain_refuses_is_the_gateways_500() -> None:
    """Under 5 minutes the chain refuses the session (SessionTooShort): no session, no stake, a 500."""
    models, _ = discover_models(RUN)
    if not models:
        pytest.skip("the target lists no models")
    key = RUN.keys[0]
    RUN.fresh(key)
    response = RUN.client.post(
        f"{SESSION}/modelsession", key=key, params={"model_id": sorted(models)[0]}, json={"sessionDuration": 60}
    )
    assert response.status_code == 500, (
        f"expected the proxy-router's 500, got {response.status_code} {response.text[:200]}"
    )
    assert response.headers.get("content-type") == "application/json"
    assert_body_conforms(MODEL_SESSION, 500, response.json())
    assert response.json()["detail"].startswith("Error from proxy router: Failed to create session: ")
    ping = RUN.client.post(f"{SESSION}/pingsession", key=key).json()
    assert ping["status"] == "no_session", f"a refused create must leave no session, ping says {ping}"
