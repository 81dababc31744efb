"""`/`, `/health`, `/api/v1/openapi.json`, `/docs` and the dashboard's files, in-process."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mockserver.domain import FakeClock, FaultKind, immediate
from mockserver.web.pages import human_duration
from openapi import load_spec
from tests.conftest import ClientFactory


def test_the_root_page_has_the_gateways_shape(client: TestClient) -> None:
    assert client.get("/").json() == {
        "name": "Morpheus API Gateway",
        "version": "1.14.0",
        "description": "OpenAI-compatible API gateway for Morpheus blockchain models",
        "documentation": {"swagger_ui": "/docs"},
    }


def test_health_has_the_gateways_shape_and_counts_uptime_on_the_mocks_clock(
    client: TestClient, clock: FakeClock
) -> None:
    immediate(clock.advance(3_725))
    body = client.get("/health").json()
    assert set(body) == {"status", "timestamp", "version", "database", "model_service", "container", "uptime"}
    assert (body["status"], body["database"], body["version"]) == ("ok", "healthy", "1.14.0")
    assert body["model_service"]["model_count"] >= 1
    assert body["model_service"]["default_fallback_model"] == "mistral-31-24b"
    assert set(body["container"]) == {"id", "system", "python_version"}
    assert body["uptime"]["seconds"] == 3_725
    assert body["uptime"]["human_readable"] == "1h 2m 5s"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59, "59s"), (60, "1m 0s"), (90_061, "1d 1h 1m 1s"), (86_400, "1d 0s")]
)
def test_human_durations(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_the_live_openapi_document_is_the_spec_labelled_as_the_gateway_labelled_it(client: TestClient) -> None:
    served = client.get("/api/v1/openapi.json").json()
    spec = load_spec().document
    assert served["openapi"] == "3.0.2"  # the gateway's custom_openapi forced this label
    assert served["paths"].keys() == spec["paths"].keys()
    assert served["servers"][0] == {"url": "/", "description": "This mock"}
    assert served["servers"][1:] == list(spec["servers"])


def test_the_docs_page_loads_swagger_ui_from_the_mock_itself(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="/docs/assets/swagger-ui-bundle.js"' in page.text
    assert 'url: "/api/v1/openapi.json"' in page.text
    assert "http" not in page.text.split("<body>", 1)[1]  # no CDN, no other host
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 100_000
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200


def test_the_dashboard_and_its_files_are_served_with_the_admin_api(client: TestClient) -> None:
    page = client.get("/__admin")
    assert page.headers["content-type"].startswith("text/html")
    assert "/__admin/static/dashboard.js" in page.text
    script = client.get("/__admin/static/dashboard.js").text
    assert 'const ADMIN = "/__admin";' in script
    kinds = client.get("/__admin/openapi.json").json()["components"]["schemas"]["FaultKind"]["enum"]
    assert kinds == [kind.value for kind in FaultKind]


def test_no_dashboard_without_the_admin_api(make_client: ClientFactory) -> None:
    client = make_client(admin=False)
    assert client.get("/__admin").status_code == 404
    assert client.get("/__admin/static/dashboard.js").status_code == 404
    assert client.get("/docs").status_code == 200


def test_the_dashboards_polls_stay_out_of_the_journal(client: TestClient) -> None:
    client.get("/__admin/state", headers={"X-Mock-Dashboard": "poll"})
    client.get("/__admin/state")
    paths = [entry["path"] for entry in client.get("/__admin/journal").json()["entries"]]
    assert paths == ["/__admin/state"]
