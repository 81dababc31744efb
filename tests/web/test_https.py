"""The gateway's opt-in HTTPS enforcement: 426 for plain HTTP to a non-local host, nothing otherwise."""

from __future__ import annotations

import pytest

from tests.conftest import ClientFactory
from tests.web.helpers import SESSION, auth


@pytest.mark.parametrize(
    ("host", "headers", "status"),
    [
        ("api.mor.org", {}, 426),
        ("api.mor.org:8080", {}, 426),
        ("localhost:8000", {}, 200),
        ("127.0.0.1", {}, 200),
        ("10.1.2.3", {}, 200),
        ("172.17.0.2:8000", {}, 200),
        ("192.168.1.5", {}, 200),
        ("api.mor.org", {"X-Forwarded-Proto": "https"}, 200),
        ("api.mor.org", {"X-Forwarded-Scheme": "https"}, 200),
        ("api.mor.org", {"CF-Visitor": '{"scheme": "https"}'}, 200),
    ],
)
def test_plain_http_to_a_public_host_is_refused(
    make_client: ClientFactory, host: str, headers: dict[str, str], status: int
) -> None:
    client = make_client(enforce_https=True)
    response = client.post(f"{SESSION}/pingsession", params={"x": "1"}, headers={"Host": host, **headers, **auth()})
    assert response.status_code == status
    if status == 426:
        assert response.json()["https_url"] == f"https://{host}{SESSION}/pingsession?x=1"


def test_https_requests_pass(make_client: ClientFactory) -> None:
    client = make_client(enforce_https=True)
    client.base_url = client.base_url.copy_with(scheme="https")
    assert client.post(f"{SESSION}/pingsession", headers={"Host": "api.mor.org", **auth()}).status_code == 200


def test_enforcement_is_off_by_default(make_client: ClientFactory) -> None:
    assert make_client().post(f"{SESSION}/pingsession", headers={"Host": "api.mor.org", **auth()}).status_code == 200
