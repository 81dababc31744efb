"""One access-log line per request at INFO: method, path, status, key prefix, time; never the full key."""

from __future__ import annotations

import logging
import re

import pytest
from starlette.testclient import TestClient

from tests.conftest import KEY, SEED_BODY


def test_each_request_is_one_info_line_with_the_key_by_prefix(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mockserver.access"):
        client.post(
            "/api/v1/session/modelsession",
            params={"model_id": "m"},
            json=SEED_BODY,
            headers={"Authorization": f"Bearer {KEY}"},
        )
        client.get("/api/v1/models")
    lines = [record.getMessage() for record in caplog.records if record.name == "mockserver.access"]
    assert len(lines) == 2
    assert re.fullmatch(r"POST /api/v1/session/modelsession\?model_id=m 200 key=sk-AbC123 \d+\.\d ms", lines[0])
    assert re.fullmatch(r"GET /api/v1/models 200 key=- \d+\.\d ms", lines[1])
    assert all(record.levelno == logging.INFO for record in caplog.records)
    assert KEY not in caplog.text


def test_nothing_is_formatted_when_info_is_off(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mockserver.access"):
        client.get("/api/v1/models")
    assert caplog.records == []
