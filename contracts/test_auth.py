"""Authentication on every keyed operation: the gateway's three 401 texts, always with WWW-Authenticate."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import runtime
from contracts.checks import assert_body_conforms
from openapi import load_spec

RUN = runtime.current()
MISSING = "API key missing"
BAD_FORMAT = "Invalid API key format. Must start with sk-"
INVALID = "Invalid API key"
FIRST = RUN.keys[0]
UNKNOWN = "sk-Zz9Zz9." + "0" * 64
WRONG_SECRET = FIRST[:10] + ("f" if FIRST[10:11] != "f" else "e") * 64
JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
CASES = [
    pytest.param(None, MISSING, id="missing"),
    pytest.param("", MISSING, id="empty"),
    pytest.param(f"Token {FIRST}", BAD_FORMAT, id="token-scheme"),
    pytest.param(f"bearer {FIRST}", BAD_FORMAT, id="lower-case-bearer"),
    pytest.param(f"Bearer  {FIRST}", BAD_FORMAT, id="two-spaces"),
    pytest.param(f"Bearer {JWT}", BAD_FORMAT, id="jwt"),
    pytest.param(UNKNOWN, INVALID, id="unknown-key"),
    pytest.param(FIRST[:9], INVALID, id="prefix-only"),
    pytest.param(f"Bearer {WRONG_SECRET}", INVALID, id="wrong-secret"),
]
# A request that would succeed with the right key, so that only authentication can refuse it.
REQUESTS: dict[str, dict[str, Any]] = {
    "create_model_session_api_v1_session_modelsession_post": {
        "params": {"model_id": "mistral-31-24b"},
        "json": {"sessionDuration": RUN.settings.session_duration},
    },
    "create_bid_session_api_v1_session_bidsession_post": {
        "params": {"bid_id": "0x01"},
        "json": {"sessionDuration": RUN.settings.session_duration},
    },
    "close_session_api_v1_session_closesession_post": {},
    "ping_session_api_v1_session_pingsession_post": {},
    "approve_spending_api_v1_session_approve_post": {"params": {"amount": "1"}},
}
OPERATIONS = [op for op in load_spec().operations if op.requires_api_key]


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(op, id=op.operation_id.split("_api_")[0], marks=pytest.mark.contract(operations=(op.label,)))
        for op in OPERATIONS
    ],
)
@pytest.mark.parametrize(("authorization", "detail"), CASES)
def test_bad_keys_are_refused(
    request: pytest.FixtureRequest, operation: Any, authorization: str | None, detail: str
) -> None:
    if operation.operation_id.startswith("approve") and not RUN.spend_allowed:
        pytest.skip("approve is never sent without --allow-spend (a target that ignored the key would spend)")
    headers = {} if authorization is None else {"Authorization": authorization}
    response = RUN.client.post(operation.path, headers=headers, **REQUESTS[operation.operation_id])
    assert response.status_code == 401, (
        f"{operation.label} with {request.node.callspec.id}: expected 401, "
        f"got {response.status_code} {response.text[:200]}"
    )
    assert response.json() == {"detail": detail}
    assert response.headers.get("WWW-Authenticate") == "Bearer", "a 401 must carry WWW-Authenticate: Bearer"
    assert_body_conforms(operation.operation_id, 401, response.json())


@pytest.mark.contract(operations=("GET /api/v1/models",))
def test_the_models_list_needs_no_key() -> None:
    response = RUN.client.get("/api/v1/models")
    assert response.status_code == 200
    assert_body_conforms("list_models_api_v1_models_get", 200, response.json())
