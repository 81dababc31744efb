"""Hostile input against the served mock: each gets a clear error in the gateway's shape, never a 5xx or a
crash, and the state is unchanged afterwards."""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.served import KEYS, Served, send_raw

PATH = "/api/v1/session/modelsession?model_id=mistral-31-24b"
PARSE_ERROR = {"detail": "There was an error parsing the body"}
BAD_REQUEST = {"detail": "Invalid HTTP request received."}
TOO_LARGE = {"detail": "Request body too large: the limit is 1048576 bytes"}


def request(
    body: bytes = b"{}", *, path: str = PATH, content_type: str | None = "application/json", extra: str = ""
) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: mock\r\nAuthorization: Bearer {KEYS[0]}\r\nConnection: close\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return (head + extra + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body


def chunked(size: int) -> bytes:
    head = f"POST {PATH} HTTP/1.1\r\nHost: mock\r\nAuthorization: Bearer {KEYS[0]}\r\nConnection: close\r\n"
    head += "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b" " * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(size // len(chunk))) + b"0\r\n\r\n"
    return head.encode() + body


CASES = {
    "body-over-the-limit": (request(b" " * 2_000_000), 413, TOO_LARGE),
    "chunked-body-over-the-limit": (chunked(2_000_000), 413, TOO_LARGE),
    "invalid-utf8-json": (request(b'{"sessionDuration": "\xff\xfe"}'), 400, PARSE_ERROR),
    "deeply-nested-lists": (request(b"[" * 100_000 + b"]" * 100_000), 400, PARSE_ERROR),
    "deeply-nested-objects": (request(b'{"a":' * 5000 + b"1" + b"}" * 5000), 400, PARSE_ERROR),
    "huge-number": (request(b'{"sessionDuration": ' + b"9" * 100_000 + b"}"), 400, PARSE_ERROR),
    "long-query": (request(path=PATH + "&x=" + "a" * 200_000), 400, BAD_REQUEST),
    "garbage-request-line": (b"GARBAGE\r\n\r\n", 400, BAD_REQUEST),
    "nul-in-header": (request(extra="X-Evil: a\x00b\r\n"), 400, BAD_REQUEST),
}


@pytest.fixture(scope="module")
def session(served: Served) -> str:
    """The key's session before the hostile input; it must be the same after each case."""
    response = served.post(PATH.split("?")[0], params={"model_id": "mistral-31-24b"}, json={})
    return str(response.json()["session_id"])


def _unchanged(served: Served, session: str) -> None:
    state = requests.get(f"{served.url}/__admin/state/{KEYS[0][:9]}", timeout=5).json()
    assert state["session"]["session_id"] == session
    assert served.alive()


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_request_gets_a_clear_error(served: Served, session: str, name: str) -> None:
    data, status, body = CASES[name]
    answer = send_raw(served.host, served.port, data)
    assert answer[0] == status, answer
    assert json.loads(answer[2]) == body
    assert answer[1]["content-type"] == "application/json"
    _unchanged(served, session)


@pytest.mark.parametrize(
    ("name", "data", "item"),
    [
        ("nan", request(b'{"sessionDuration": NaN}'), ("finite_number", "NaN")),
        (
            "invalid-utf8-text",
            request(b"\xff\xfe", content_type="text/plain"),
            ("model_attributes_type", "\ufffd\ufffd"),
        ),
        ("wrong-content-type", request(b"<a/>", content_type="application/xml"), ("model_attributes_type", "<a/>")),
    ],
)
def test_bodies_the_gateway_could_not_render_get_a_422(
    served: Served, session: str, name: str, data: bytes, item: tuple[str, str]
) -> None:
    status, _, body = send_raw(served.host, served.port, data)
    assert status == 422
    [detail] = json.loads(body)["detail"]
    assert (detail["type"], detail["input"]) == item
    _unchanged(served, session)


def test_repeated_parameters_take_the_last_value(served: Served, session: str) -> None:
    status, _, body = send_raw(
        served.host, served.port, request(path=f"{PATH.split('?')[0]}?model_id=x&model_id=mistral-31-24b")
    )
    assert status == 200
    assert json.loads(body)["session_id"] == session  # R1: the same model, so the same session
    _unchanged(served, session)


def test_a_long_but_legal_header_is_served(served: Served, session: str) -> None:
    status, _, _ = send_raw(
        served.host, served.port, request(path="/api/v1/session/pingsession", extra=f"X-Long: {'a' * 60_000}\r\n")
    )
    assert status == 200
    _unchanged(served, session)


def test_a_slow_client_does_not_hold_up_others(served: Served, session: str) -> None:
    import socket

    with socket.create_connection((served.host, served.port), timeout=10) as slow:
        slow.sendall(request(b'{"sessionDuration": 3600}')[:-10])  # the body's last bytes never come
        started = time.monotonic()
        for _ in range(20):
            assert served.post("/api/v1/session/pingsession").status_code == 200
        assert time.monotonic() - started < 10  # generous: the point is that they are not queued behind it
    assert _eventually_journaled(served, 499)  # the slow client left: "client closed", not a crash
    _unchanged(served, session)


def _eventually_journaled(served: Served, status: int, within: float = 10.0) -> bool:
    """The mock notices a client has gone when it next reads from it: poll the journal for a while."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        entries = requests.get(f"{served.url}/__admin/journal", params={"limit": "100"}, timeout=5).json()["entries"]
        if any(entry["status"] == status for entry in entries):
            return True
        time.sleep(0.05)
    return False


def test_nothing_was_logged_as_a_crash(served: Served) -> None:
    log = served.log.read_text()
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log
