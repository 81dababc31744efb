"""Authentication on every keyed operation: the gateway's three 401 texts, always with WWW-Authenticate."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.answers import expect_answer
from contracts.api import APPROVE, BID_SESSION, LIST_MODELS, MODEL_SESSION, SPEC
from contracts.runtime import DEFAULT_MODEL_NAME, Run
from openapi import Operation

MISSING = "API key missing"
BAD_FORMAT = "Invalid API key format. Must start with sk-"
INVALID = "Invalid API key"
UNKNOWN = "sk-Zz9Zz9." + "0" * 64
JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
# The Authorization header of each case, `{key}` standing for the run's first key (filled in at run time,
# so that no key is ever part of a test id or of the module).
CASES = [
    pytest.param(None, MISSING, id="missing"),
    pytest.param("", MISSING, id="empty"),
    pytest.param("Token {key}", BAD_FORMAT, id="token-scheme"),
    pytest.param("bearer {key}", BAD_FORMAT, id="lower-case-bearer"),
    pytest.param("Bearer  {key}", BAD_FORMAT, id="two-spaces"),
    pytest.param(f"Bearer {JWT}", BAD_FORMAT, id="jwt"),
    pytest.param(f"Bearer {UNKNOWN}", INVALID, id="unknown-key"),
    pytest.param("Bearer {prefix}", INVALID, id="prefix-only"),
    pytest.param("Bearer {wrong_secret}", INVALID, id="wrong-secret"),
]
KEYED = [operation for operation in SPEC.operations if operation.requires_api_key]


def _request(operation: Operation, run: Run) -> dict[str, Any]:
    """A request that would succeed with the right key, so that only authentication can refuse it."""
    duration = {"sessionDuration": run.settings.session_duration}
    if operation == MODEL_SESSION:
        return {"params": {"model_id": DEFAULT_MODEL_NAME}, "json": duration}
    if operation == BID_SESSION:
        return {"params": {"bid_id": "0x01"}, "json": duration}
    return {"params": {"amount": "1"}} if operation == APPROVE else {}


def _authorization(template: str, key: str) -> str:
    wrong_secret = key[:10] + ("f" if key[10:11] != "f" else "e") * 64
    return template.format(key=key, prefix=key[:9], wrong_secret=wrong_secret)


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(op, id=op.operation_id.split("_api_")[0], marks=pytest.mark.contract(operations=(op.label,)))
        for op in KEYED
    ],
)
@pytest.mark.parametrize(("authorization", "detail"), CASES)
def test_bad_keys_are_refused(
    request: pytest.FixtureRequest, run: Run, operation: Operation, authorization: str | None, detail: str
) -> None:
    if operation == APPROVE and not run.spend_allowed:
        pytest.skip("approve is never sent without --allow-spend (a target that ignored the key would spend)")
    headers = {} if authorization is None else {"Authorization": _authorization(authorization, run.keys[0])}
    response = run.client.post(operation.path, headers=headers, **_request(operation, run))
    body = expect_answer(operation, response, status=401)
    assert body == {"detail": detail}, f"{operation.label} with {request.node.callspec.id}: {body}"
    assert response.headers.get("WWW-Authenticate") == "Bearer", "a 401 must carry WWW-Authenticate: Bearer"


@pytest.mark.contract(operations=(LIST_MODELS.label,))
def test_the_models_list_needs_no_key(run: Run) -> None:
    expect_answer(LIST_MODELS, run.client.get(LIST_MODELS.path))
