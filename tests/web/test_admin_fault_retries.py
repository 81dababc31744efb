"""POST /__admin/faults with `retries` and `duration`, through HTTP with the SDKs' retry headers."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mockserver.domain import FakeClock
from tests.conftest import KEY, SEED_BODY
from tests.web.test_admin import _conforms

CREATE = "/api/v1/session/modelsession"


def create(client: TestClient, retry: int) -> int:
    headers = {"Authorization": f"Bearer {KEY}", "x-stainless-retry-count": str(retry)}
    return client.post(CREATE, params={"model_id": "m"}, json=SEED_BODY, headers=headers).status_code


def test_a_fault_armed_with_retries_fails_one_sdk_call(client: TestClient) -> None:
    armed = _conforms(
        "arm_fault", client.post("/__admin/faults", json={"kind": "create_fail", "count": 1, "retries": True})
    )
    assert (armed["retries"], armed["until"]) == (True, None)
    assert [create(client, 0), create(client, 1), create(client, 2), create(client, 0)] == [500, 500, 500, 200]
    assert _conforms("list_faults", client.get("/__admin/faults"))["faults"] == []


def test_a_fault_armed_for_a_duration_ends_with_the_clock(client: TestClient, clock: FakeClock) -> None:
    armed = _conforms("arm_fault", client.post("/__admin/faults", json={"kind": "create_fail", "duration": 60}))
    assert armed["until"] == clock.now() + 60
    assert create(client, 0) == 500
    client.post("/__admin/clock/advance", json={"seconds": 60})
    assert create(client, 0) == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"kind": "create_fail", "retries": "yes"}, "'retries' must be true or false"),
        ({"kind": "create_fail", "duration": 0}, "duration must be a finite number of seconds > 0"),
        ({"kind": "create_fail", "duration": "1"}, "'duration' must be a number >= 0"),
        ({"kind": "latency", "seconds": 1, "retries": True}, "retries applies to faults that break a call"),
    ],
)
def test_bad_retries_and_durations_are_422_problems(client: TestClient, body: dict[str, object], detail: str) -> None:
    refused = client.post("/__admin/faults", json=body)
    assert refused.status_code == 422
    assert detail in _conforms("arm_fault", refused)["detail"]
