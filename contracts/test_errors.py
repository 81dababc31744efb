"""Documented error answers the suite can provoke without harm to a target."""

from __future__ import annotations

import pytest

from contracts.answers import expect_answer
from contracts.api import MODEL_SESSION, PING
from contracts.runtime import Run


@pytest.mark.contract(operations=(MODEL_SESSION.label,))
def test_a_duration_the_chain_refuses_is_the_gateways_500(run: Run) -> None:
    """Under 5 minutes the chain refuses the session (SessionTooShort): no session, no stake, a 500."""
    if not run.model_names:
        pytest.skip("the target lists no models")
    key = run.keys[0]
    run.fresh(key)
    # No session budget: a gateway opens nothing for a duration the chain refuses (one that did fails here).
    response = run.client.post(
        MODEL_SESSION.path, key=key, params={"model_id": run.model_names[0]}, json={"sessionDuration": 60}
    )
    detail = expect_answer(MODEL_SESSION, response, status=500)["detail"]
    assert detail.startswith("Error from proxy router: Failed to create session: "), detail
    ping = expect_answer(PING, run.client.post(PING.path, key=key))
    assert ping["status"] == "no_session", f"a refused create must leave no session, ping says {ping}"
