"""Every golden case sent to the in-process mock over HTTP: identical answers where the gateway failed the request,
and the coerced values used where it let the request through."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver.domain import FakeClock
from tests.conftest import ClientFactory
from tests.golden import load_cases

CASES = load_cases()
TOO_SHORT = 'Error from proxy router: Failed to create {what}: HTTP 500: {{"error":"SessionTooShort"}}'


def _send(client: TestClient, request: dict[str, Any]) -> Any:
    headers = {}
    if request["authorization"] is not None:
        headers["Authorization"] = request["authorization"]
    if request["content_type"] is not None:
        headers["Content-Type"] = request["content_type"]
    body = base64.b64decode(request["body_b64"]) if request["body_b64"] is not None else None
    query = [tuple(pair) for pair in request["query"]]
    return client.request(request["method"], request["path"], params=query, headers=headers, content=body)


@pytest.mark.parametrize("case", [c for c in CASES if c["response"]["status"] != 200], ids=lambda c: c["id"])
def test_failed_golden_cases_are_answered_identically(client: TestClient, case: dict[str, Any]) -> None:
    expected = case["response"]
    response = _send(client, case["request"])
    assert response.status_code == expected["status"]
    assert response.json() == expected["body"]
    assert response.headers["content-type"] == expected["headers"]["content-type"]
    for header in ("www-authenticate", "allow"):
        assert response.headers.get(header) == expected["headers"].get(header), header


def _expected_create(case: dict[str, Any]) -> tuple[int, float | None, str | None]:
    """(status, session length, 500 detail) that the business logic gives for the coerced duration."""
    duration = case["response"]["body"]["body"]["sessionDuration"]
    model = "modelsession" in case["request"]["path"]
    length = 3600 if duration == 0 and model else duration  # modelsession's 0: the key's automation duration
    what = "session" if model else "bid session"  # bidsession sends 0 to the chain as given
    if length < 300:
        return 500, None, TOO_SHORT.format(what=what)
    if length >= 2**63:
        return 500, None, f"Error from proxy router: Failed to create {what}: HTTP 400: "
    return 200, length, None


@pytest.mark.parametrize("case", [c for c in CASES if c["response"]["status"] == 200], ids=lambda c: c["id"])
def test_passed_golden_cases_run_the_business_logic_on_the_coerced_values(
    make_client: ClientFactory, clock: FakeClock, case: dict[str, Any]
) -> None:
    client = make_client()
    marker = case["response"]["body"]
    response = _send(client, case["request"])
    path = case["request"]["path"]
    if path.endswith(("modelsession", "bidsession")):
        status, length, detail = _expected_create(case)
        assert response.status_code == status, response.text
        if detail is not None:
            assert response.json()["detail"].startswith(detail)
            return
        key = response.json()["api_key_prefix"]
        session = client.get(f"/__admin/state/{key}").json()["session"]
        assert session["expires_at"] - session["created_at"] == length
        assert session["requested"] == marker.get("model_id", marker.get("bid_id"))
        if path.endswith("modelsession"):
            assert response.json()["model"] == marker["model_id"]
    elif path.endswith("approve"):
        assert response.status_code == 200
        assert set(response.json()) == {"tx", "note"}
    else:
        assert response.status_code == 200
        assert response.json()["success"] is (path.endswith("closesession"))
