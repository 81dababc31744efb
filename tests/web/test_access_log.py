"""One access-log line per request at INFO: method, path, status, key prefix, time; never the full key."""

from __future__ import annotations

import io
import logging
import re

import pytest
from starlette.testclient import TestClient

from mockserver.logbatch import LOG_FORMAT, TurnBatchingHandler
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


def test_served_the_line_goes_to_the_batch_without_a_log_record(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    handler = TurnBatchingHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    served = logging.getLogger("mockserver")  # as log_config sets it up for `python -m mockserver`
    monkeypatch.setattr(served, "handlers", [handler])
    monkeypatch.setattr(served, "propagate", False)
    monkeypatch.setattr(served, "level", logging.INFO)
    monkeypatch.setattr(logging.Logger, "makeRecord", _no_record)
    served.manager._clear_cache()  # type: ignore[attr-defined]  # the levels changed under the loggers' cache
    try:
        client.get("/api/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    finally:
        handler.flush()
        monkeypatch.undo()
        served.manager._clear_cache()  # type: ignore[attr-defined]
    assert re.fullmatch(r"INFO:     GET /api/v1/models 200 key=sk-AbC123 \d+\.\d ms\n", stream.getvalue())


def _no_record(*args: object, **kwargs: object) -> logging.LogRecord:
    raise AssertionError("a LogRecord was made for the access line")


def test_a_newline_or_escape_the_client_sent_is_logged_escaped(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mockserver.access"):
        client.get("/api/v1/models?x=%0AINFO:%20GET%20/forged%1b[2J%25s")
    (line,) = [record.getMessage() for record in caplog.records if record.name == "mockserver.access"]
    assert re.fullmatch(r"GET /api/v1/models\?x=\\nINFO: GET /forged\\x1b\[2J%s 200 key=- \d+\.\d ms", line), line
