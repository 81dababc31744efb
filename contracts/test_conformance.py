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

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import ensure_resource_availability, use_after_free

from contracts import runtime
from contracts.checks import body_matches_the_gateway_contract, server_errors_are_the_gateways
from openapi import SPEC_PATH

RUN = runtime.current()
CREATES = ("/api/v1/session/modelsession", "/api/v1/session/bidsession")
EXCLUDED_CHECKS = [not_a_server_error, use_after_free, ensure_resource_availability]

loaded = schemathesis.openapi.from_path(SPEC_PATH)
loaded.config.update(base_url=RUN.base_url)
schema = loaded if RUN.spend_allowed else loaded.exclude(operation_id="approve_spending_api_v1_session_approve_post")


@schema.auth()
class ApiKey:
    """The first key, as `Bearer <key>`; negative cases drop or spoil it on their own."""

    def get(self, case: Any, ctx: Any) -> str:
        return RUN.keys[0]

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _guard(case: Any) -> bool:
    """Staging safety before a request: False holds it back. Sessions are capped; against a URL,
    a valid create asks for the run's short duration instead of the generated one."""
    if case.operation.path not in CREATES:
        return True
    if not RUN.ledger.may_open():
        RUN.ledger.hold_back("create (session cap reached)")
        return False
    positive = case.meta is None or case.meta.generation.mode.name == "POSITIVE"
    if not RUN.settings.in_process and positive and isinstance(case.body, dict) and "sessionDuration" in case.body:
        case.body = {**case.body, "sessionDuration": RUN.settings.session_duration}
    return True


@schema.parametrize()
@settings(
    max_examples=RUN.settings.examples,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_conformance(case: Any) -> None:
    RUN.cases += 1
    if not _guard(case):
        return
    response = case.call(session=RUN.client.session)
    case.validate_response(
        response,
        excluded_checks=EXCLUDED_CHECKS,
        additional_checks=[body_matches_the_gateway_contract, server_errors_are_the_gateways],
    )
