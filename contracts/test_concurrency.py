"""R8: parallel creates for one key leave exactly one active session (ping and a second create agree)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from contracts import runtime
from contracts.checks import assert_body_conforms
from contracts.machine import RuleBroken, discover_models

RUN = runtime.current()
SESSION = "/api/v1/session"
BODY = {"sessionDuration": RUN.settings.session_duration, "directPayment": False, "failover": False}


# v1.14.0's bidsession takes no lock: parallel bids of one key lose on the unique active row (observed).
UNIQUE_VIOLATION = "UniqueViolationError"


def _create(path: str, params: dict[str, str]) -> dict[str, Any]:
    response = RUN.client.post(f"{SESSION}/{path}", key=RUN.keys[0], params=params, json=BODY)
    if path == "bidsession" and response.status_code == 500 and UNIQUE_VIOLATION in response.text:
        return {}
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:200]}"
    body: dict[str, Any] = response.json()
    assert_body_conforms(f"create_{path[:-7]}_session_api_v1_session_{path}_post", 200, body)
    return body


def _parallel(path: str, params: dict[str, str]) -> list[str]:
    if (
        RUN.settings.session_cap is not None
        and len(RUN.ledger.opened) + RUN.settings.concurrency > RUN.settings.session_cap
    ):
        pytest.skip(
            f"the session cap ({RUN.settings.session_cap}) leaves no room for "
            f"{RUN.settings.concurrency} parallel creates"
        )
    RUN.fresh(RUN.keys[0])
    with ThreadPoolExecutor(max_workers=RUN.settings.concurrency) as pool:
        bodies = list(pool.map(lambda _: _create(path, params), range(RUN.settings.concurrency)))
    assert any(bodies), f"every parallel {path} failed"
    return [body["session_id"] for body in bodies if body]


def _ping() -> dict[str, Any]:
    body: dict[str, Any] = RUN.client.post(f"{SESSION}/pingsession", key=RUN.keys[0]).json()
    return body


def _only_one_left(active: str) -> None:
    """Closing the one active session must leave none: a second survivor would now answer ping."""
    closed = RUN.client.post(f"{SESSION}/closesession", key=RUN.keys[0]).json()
    if closed.get("session_id") != active:
        raise RuleBroken("R8", f"close ended {closed.get('session_id')}, not the active session {active}")
    if _ping()["status"] != "no_session":
        raise RuleBroken("R8", "after closing the active session another one is still alive: two sessions were active")


@pytest.mark.contract(rules=("R8",), operations=(f"POST {SESSION}/modelsession",))
def test_r8_parallel_modelsessions_on_one_model_share_one_session() -> None:
    models, _ = discover_models(RUN)
    if not models:
        pytest.skip("the target lists no models")
    ids = _parallel("modelsession", {"model_id": sorted(models)[0]})
    if len(set(ids)) != 1:
        raise RuleBroken("R8", f"{len(ids)} parallel modelsession calls on one model returned {len(set(ids))} sessions")
    ping = _ping()
    if (
        ping.get("session_id") != ids[0]
        or _create("modelsession", {"model_id": sorted(models)[0]})["session_id"] != ids[0]
    ):
        raise RuleBroken("R8", f"ping ({ping.get('session_id')}) and a second create disagree with {ids[0]}")
    _only_one_left(ids[0])


@pytest.mark.contract(rules=("R8",), operations=(f"POST {SESSION}/bidsession",))
def test_r8_parallel_bidsessions_leave_one_active_session() -> None:
    if not RUN.bids:
        pytest.skip("no bid ids: pass --bid-id to let the run open bid sessions")
    ids = _parallel("bidsession", {"bid_id": RUN.bids[0]})
    active = _ping().get("session_id")
    if active not in ids:
        raise RuleBroken("R8", f"after {len(ids)} parallel bidsessions, ping reports {active}, none of them")
    _only_one_left(str(active))
