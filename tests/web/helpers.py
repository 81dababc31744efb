"""Small request helpers for the web tests."""

from __future__ import annotations

from typing import Any

import httpx2
from starlette.testclient import TestClient

from tests.conftest import KEY, SEED_BODY

SESSION = "/api/v1/session"


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def model_session(client: TestClient, model: str = "mistral-31-24b", key: str = KEY, **body: Any) -> httpx2.Response:
    return client.post(
        f"{SESSION}/modelsession", params={"model_id": model}, json={**SEED_BODY, **body}, headers=auth(key)
    )


def bid_session(client: TestClient, bid: str = "0x01", key: str = KEY, **body: Any) -> httpx2.Response:
    return client.post(f"{SESSION}/bidsession", params={"bid_id": bid}, json={**SEED_BODY, **body}, headers=auth(key))


def close(client: TestClient, key: str = KEY) -> httpx2.Response:
    return client.post(f"{SESSION}/closesession", headers=auth(key))


def ping(client: TestClient, key: str = KEY) -> httpx2.Response:
    return client.post(f"{SESSION}/pingsession", headers=auth(key))


def approve(client: TestClient, amount: str = "10", key: str = KEY) -> httpx2.Response:
    return client.post(f"{SESSION}/approve", params={"amount": amount}, headers=auth(key))


def arm(client: TestClient, kind: str, **options: Any) -> None:
    response = client.post("/__admin/faults", json={"kind": kind, **options})
    assert response.status_code == 201, response.text
