"""Generated conformance tests (Schemathesis) of every operation: positive and negative cases, all the
built-in checks that fit the gateway, plus the contract's own body checks.

Checks left off, and why:
- not_a_server_error: the gateway answers documented 500s for valid input (a sessionDuration the chain
  refuses, a failing proxy-router); `server_errors_are_the_gateways` checks each 500 is one of its texts,
  and status/schema conformance check it is documented.
- use_after_free, ensure_resource_availability: they need resource paths (GET/DELETE by id); the
  session API has none (the key is the resource). The session rules are checked by the state machine.
- max_response_time: off by default in Schemathesis too; speed is measured by `make bench`.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ensure_resource_availability, use_after_free

from contracts.api import APPROVE, BID_SESSION, CLOSE, CREATES, MODEL_SESSION, PING
from contracts.chat_budget import CHAT_PATHS, NOT_ALLOWED
from contracts.checks import (
    body_matches_the_gateway_contract,
    server_errors_are_the_gateways,
    streams_match_the_gateway_contract,
)
from contracts.plugin import GENERATED_OWNER as GENERATED
from contracts.runtime import Run
from openapi import SPEC_PATH

CREATE_PATHS = frozenset(operation.path for operation in CREATES)
EXCLUDED_CHECKS = [not_a_server_error, use_after_free, ensure_resource_availability]
# Generation needs no target: each case gets the run's base URL and first key when it is sent. Until
# then its Authorization carries this stand-in, so no key is ever part of a generated case.
RUN_KEY = "sk-RunKey.the-run's-first-key"

schema = schemathesis.openapi.from_path(SPEC_PATH)


@schema.auth()
class ApiKey:
    """The run's first key, as `Bearer <key>`; negative cases drop or spoil it on their own."""

    def get(self, case: Any, ctx: Any) -> str:
        return RUN_KEY

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _with_key(case: Any, key: str) -> None:
    if case.headers and case.headers.get("Authorization") == f"Bearer {RUN_KEY}":
        case.headers["Authorization"] = f"Bearer {key}"


def _positive(case: Any) -> bool:
    return case.meta is None or case.meta.generation.mode.name == "POSITIVE"


def _chat_guard(case: Any, run: Run) -> bool:
    """Chat costs tokens: sent only with --allow-chat (else the case skips), within --max-chats, and
    only while the session budget has room (a gateway may accept an invalid one and open a session)."""
    if not run.settings.chat_allowed:
        pytest.skip(NOT_ALLOWED)
    if not run.chats.room():
        run.ledger.hold_back("chat (chat cap reached)")
        return False
    if not run.ledger.may_open():
        run.ledger.hold_back("chat (session cap reached)")
        return False
    return True


def _count_chat_session(run: Run) -> None:
    """Against a capped target, the session a valid chat may have opened is counted (ping tells which)."""
    if run.ledger.cap is None:
        return
    body = run.client.post(PING.path, key=run.keys[0]).json()
    if isinstance(body, dict) and isinstance(body.get("session_id"), str):
        run.ledger.count(body["session_id"])


def _reuses(case: Any, run: Run) -> str | None:
    """Under a session cap, a valid modelsession is steered to the free path: the first key whose session a
    ping (free) finds alive, when a modelsession of this run named that session, and the case asks for its
    model; a faithful gateway returns the session (R1) and opens nothing. Returns that key (None: no such
    key, or the run is at its cap: a gateway that opened a session anyway would take it past the cap)."""
    if run.ledger.cap is None or case.operation.path != MODEL_SESSION.path or not run.ledger.below_cap():
        return None
    for key in run.keys:
        try:
            held = run.client.post(PING.path, key=key).json()
        except ValueError:  # not JSON: the ping's own case reports it
            return None
        model_id = run.ids.model_of(held.get("session_id")) if isinstance(held, dict) else None
        if model_id is not None and held.get("status") == "alive":
            case.query = {**(case.query or {}), "model_id": model_id}
            return key
    return None


def _guard(case: Any, run: Run) -> str | None:
    """Staging safety before a request: None holds it back, else the key to send it with. A valid create
    that opens a session is sent only while the session budget leaves sessions beyond every rule check's
    reservation (a valid modelsession first goes the free way, `_reuses`), and against a URL asks for the
    run's short duration instead of the generated one. An invalid one (a negative case) opens nothing on a
    gateway that refuses it, so the cap does not hold it back."""
    positive = _positive(case)
    # A valid bidsession opens a session and a close ends one: on the last key, so that the first key keeps
    # the session the generated modelsessions reuse.
    elsewhere = case.operation.path == CLOSE.path or (case.operation.path == BID_SESSION.path and positive)
    key = run.keys[-1] if elsewhere else run.keys[0]
    if case.operation.path in CHAT_PATHS:
        return key if _chat_guard(case, run) else None
    if case.operation.path not in CREATE_PATHS or not positive:
        return key
    # A modelsession may open the session it and the next ones reuse (its reservation) and leaves one
    # session under the cap, so that the reuses (sent only below the cap) stay possible; a bidsession leaves
    # that one and the modelsession's.
    owner, keep = (GENERATED, 1) if case.operation.path == MODEL_SESSION.path else (None, 2)
    reused = _reuses(case, run)
    if reused is None and not run.ledger.may_open(owner, keep=keep):
        run.ledger.hold_back(f"valid {case.operation.path.rsplit('/', 1)[-1]} (session cap reached)")
        return None
    if not run.settings.in_process and isinstance(case.body, dict) and "sessionDuration" in case.body:
        case.body = {**case.body, "sessionDuration": run.settings.session_duration}
    return reused or key


@schema.parametrize()
@settings(  # max_examples: --examples, through the run's Hypothesis profile (contracts/conftest.py)
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_conformance(case: Any, run: Run) -> None:
    if case.operation.path == APPROVE.path and not run.spend_allowed:
        pytest.skip("approve is never sent without --allow-spend")
    run.cases += 1
    key = _guard(case, run)
    if key is None:
        return
    _with_key(case, key)
    response = case.call(base_url=run.base_url, session=run.client.session)
    if case.operation.path in CHAT_PATHS and response.status_code == 200:
        _count_chat_session(run)
    case.validate_response(
        response,
        excluded_checks=EXCLUDED_CHECKS,
        additional_checks=[
            body_matches_the_gateway_contract,
            server_errors_are_the_gateways,
            streams_match_the_gateway_contract,
        ],
    )
