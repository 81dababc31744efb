"""Graceful shutdown, and the security promises: keys never in full in logs, journal or error bodies; the
admin API off by default and never open beyond loopback without a token. (Constant-time key comparison:
tests/domain/test_keys.py::test_registry_compares_full_keys_in_constant_time.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from typing import Any

import pytest
import requests

from mockserver.config import Config, problems
from tests.served import KEYS, Served, send_raw, serving


def _ping_into(served: Served, answers: list[Any]) -> None:
    answers.append(served.post("/api/v1/session/pingsession"))


def test_sigterm_lets_in_flight_requests_finish_and_exits_0() -> None:
    with serving("--log-level", "warning") as served:
        arm = {"kind": "latency", "seconds": 1.5, "operation": "ping_session_api_v1_session_pingsession_post"}
        requests.post(f"{served.url}/__admin/faults", json=arm, timeout=5).raise_for_status()
        answers: list[Any] = []
        in_flight = threading.Thread(target=_ping_into, args=(served, answers))
        in_flight.start()
        threading.Event().wait(0.5)  # the request is being served (its latency is 1.5 s)
        served.process.send_signal(signal.SIGTERM)
        in_flight.join(timeout=10)
        assert served.process.wait(timeout=15) == 0
        assert answers[0].status_code == 200
        assert answers[0].json()["status"] == "no_session"


def test_keys_never_appear_in_full_in_logs_journal_or_error_bodies() -> None:
    with serving("--log-level", "debug", "--self-check", "log") as served:
        seen = []
        for key in KEYS:
            seen.append(served.post("/api/v1/session/modelsession", key=key, params={"model_id": "m"}, json={}).text)
        seen.append(served.post("/api/v1/session/pingsession", key=KEYS[0][:-1] + "0").text)  # 401
        seen.append(
            served.post("/api/v1/session/modelsession", key=KEYS[0], params={"model_id": "m"}, data="{bad").text
        )
        seen.append(requests.get(f"{served.url}/__admin/journal", timeout=5).text)
        seen.append(requests.get(f"{served.url}/__admin/keys", timeout=5).text)
        served.process.terminate()
        served.process.wait(timeout=15)
        seen.append(served.log.read_text())
        for key in KEYS:
            assert all(key not in text and key[10:] not in text for text in seen)
        assert "sk-Contr1" in seen[-3]  # the journal shows the prefix


def test_the_admin_api_is_off_by_default() -> None:
    assert Config().admin is False


@pytest.mark.parametrize(
    ("host", "token", "refused"),
    [
        ("127.0.0.1", None, False),
        ("localhost", None, False),
        ("::1", None, False),
        ("0.0.0.0", None, True),
        ("10.0.0.5", None, True),
        ("0.0.0.0", "s3cret", False),
    ],
)
def test_the_admin_api_needs_a_token_beyond_loopback(host: str, token: str | None, refused: bool) -> None:
    assert bool(problems(Config(host=host, admin=True, admin_token=token))) is refused


def test_the_mock_refuses_to_start_an_open_admin_api() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mockserver", "--host", "0.0.0.0", "--admin"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2
    assert "--admin on 0.0.0.0 (not loopback) needs --admin-token" in run.stderr


FORGED = "INFO:     GET /forged 200 key=sk-Admin1"


@pytest.mark.parametrize(
    ("field", "request_line", "headers", "shown"),
    [
        ("path", "/api/v1/session/pingsession%0A" + FORGED.replace(" ", "%20"), "", "pingsession\\nINFO:"),
        ("query", "/api/v1/session/pingsession?x=1%0A" + FORGED.replace(" ", "%20"), "", "?x=1\\nINFO:"),
        ("query", "/api/v1/session/pingsession?x=%1b[2J%e2%80%a8", "", "?x=\\x1b[2J\\u2028 "),
        # HTTP parsers refuse C0 controls in a header; C1 ones (8-bit CSI, NEL) pass as latin-1
        ("key", "/api/v1/session/pingsession", "Authorization: Bearer sk-\x9b2J\x85x.1\r\n", "key=sk-\\x9b2J\\x85x. "),
    ],
)
def test_the_access_line_cannot_be_forged_by_what_the_client_sends(
    field: str, request_line: str, headers: str, shown: str
) -> None:
    """A newline or a terminal escape in the path, the query or the key's prefix is written escaped: the
    request stays one line of the log, and no raw control character reaches the terminal."""
    with serving() as served:
        request = f"POST {request_line} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n{headers}Connection: close\r\n\r\n"
        send_raw(served.host, served.port, request.encode("latin-1"))
        served.process.terminate()
        served.process.wait(timeout=15)
        log = served.log.read_text(encoding="utf-8")
    (line,) = [line for line in log.splitlines() if "pingsession" in line]
    assert line.startswith("INFO:     POST /api/v1/session/pingsession"), line
    assert shown in line, line
    assert not any(text.startswith("INFO:     GET /forged") for text in log.splitlines())
    assert all(char.isprintable() for char in log.replace("\n", "")), repr(log)
