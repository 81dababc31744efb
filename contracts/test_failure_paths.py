"""A failure the suite provokes itself, judged by the oracle as v1.14.0 answers it (observed-v1.14.0.md 1.1).

A model switch with a duration the chain refuses (299 s) fails after the gateway has closed the old
session on chain; the gateway's row is rolled back, so the next ping reports the OLD session `dead`
(or `no_session` when the gateway's 60-second sync ran in between) and then `no_session`.
"""

from __future__ import annotations

from typing import Any

import pytest

from contracts import runtime
from contracts.checks import assert_body_conforms
from contracts.machine import RuleBroken, discover_models
from contracts.oracle import Oracle

RUN = runtime.current()
SESSION = "/api/v1/session"
KEY = RUN.keys[0]
MODEL_SESSION = "create_model_session_api_v1_session_modelsession_post"
PING = "ping_session_api_v1_session_pingsession_post"
TOO_SHORT = 299  # under the chain's 5-minute minimum
REFUSED = "Error from proxy router: Failed to create session: "


def _post(action: str, **params: Any) -> Any:
    body = {"sessionDuration": params.pop("duration", RUN.settings.session_duration)} if params else None
    return RUN.client.post(f"{SESSION}/{action}", key=KEY, params=params, json=body)


def _ping() -> tuple[str, str | None]:
    response = _post("pingsession")
    assert response.status_code == 200, response.text[:200]
    body = response.json()
    assert_body_conforms(PING, 200, body)
    return body["status"], body.get("session_id")


@pytest.mark.contract(rules=("R2", "R5"), operations=(f"POST {SESSION}/modelsession", f"POST {SESSION}/pingsession"))
def test_a_failed_switch_leaves_the_old_session_dead_until_the_sync() -> None:
    models, default = discover_models(RUN)
    names = sorted(name for name in models if not name.startswith("0x"))
    if len({models[name] for name in names}) < 2:
        pytest.skip("the target lists one model: a switch needs two")
    first, second = names[0], next(name for name in names if models[name] != models[names[0]])
    RUN.fresh(KEY)
    oracle = Oracle(models=dict(models), default_model=default)
    opened = _post("modelsession", model_id=first)
    assert opened.status_code == 200, opened.text[:200]
    assert_body_conforms(MODEL_SESSION, 200, opened.json())
    oracle.opened(KEY, opened.json()["session_id"], "model", models[first], RUN.now() + RUN.settings.session_duration)
    now = RUN.now()
    refused = _post("modelsession", model_id=second, duration=TOO_SHORT)
    if refused.status_code != 500 or not refused.json().get("detail", "").startswith(REFUSED):
        raise RuleBroken("R2", f"a {TOO_SHORT} s session must be refused upstream (500), got {refused.text[:200]}")
    oracle.failed_create(KEY, "model", second, now)
    allowed = oracle.ping_answers(KEY)
    answer = _ping()
    if answer not in allowed:
        raise RuleBroken("R5", f"after a failed switch a ping must answer one of {sorted(allowed)}, got {answer}")
    oracle.forget(KEY, "R5")
    if _ping() != ("no_session", None):
        raise RuleBroken("R5", "the dead ping must have retired the session")
