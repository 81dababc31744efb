"""Generated raw requests thrown at the served mock: no 5xx a fault did not ask for, the process alive, R8 intact."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote_from_bytes

import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.served import KEYS, Served, send_raw, serving

PATHS = [f"/api/v1/session/{name}" for name in ("modelsession", "bidsession", "pingsession", "closesession", "approve")]
# The gateway's own 500s for durations the chain or its datetime arithmetic refuse are answers, not crashes.
DOCUMENTED_500 = ("Error from proxy router: Failed to create ", "Unexpected error: ")


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Served]:
    with serving("--log-level", "warning", "--min-session-duration", "0") as mock:
        yield mock


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
bodies = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {},
        optional={"sessionDuration": json_values, "directPayment": json_values, "failover": json_values},
    ).map(lambda value: json.dumps(value).encode()),
)
requests_ = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]),
        "path": st.sampled_from(
            [*PATHS, "/api/v1/models", "/", "/api/v1/session/nosuch", "/API/v1/session/pingsession"]
        ),
        "query": st.lists(
            st.tuples(st.sampled_from(["model_id", "bid_id", "amount", "x"]), st.binary(max_size=12)), max_size=3
        ),
        "auth": st.sampled_from(["key0", "key1", "none", "garbage", "lower"]),
        "content_type": st.sampled_from(
            [
                None,
                "application/json",
                "text/plain",
                "application/x-www-form-urlencoded",
                "application/vnd.api+json; charset=utf-8",
            ]
        ),
        "body": bodies,
    }
)


def _raw(request: dict[str, object]) -> bytes:
    query = "&".join(f"{name}={quote_from_bytes(value)}" for name, value in request["query"])  # type: ignore[attr-defined]
    auth = {"key0": f"Bearer {KEYS[0]}", "key1": KEYS[1], "garbage": "Bearer \x7fnope", "lower": f"bearer {KEYS[0]}"}
    target = f"{request['path']}{'?' + query if query else ''}"
    head = f"{request['method']} {target} HTTP/1.1\r\nHost: mock\r\nConnection: close\r\n"
    if request["auth"] in auth:
        head += f"Authorization: {auth[str(request['auth'])]}\r\n"
    if request["content_type"]:
        head += f"Content-Type: {request['content_type']}\r\n"
    body: bytes = request["body"]  # type: ignore[assignment]
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body


def test_generated_raw_requests_never_get_an_unexplained_5xx_and_leave_r8_intact(fuzzed: Served) -> None:
    """One test, not two: the checks after the fuzzing need its requests, and pytest-xdist's plain `-n 2` may run
    two tests of a module on different workers (the suite's `--dist loadfile` does not)."""
    sent: list[int] = []

    @given(requests_)
    @settings(max_examples=300, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    def throw(request: dict[str, object]) -> None:
        status, _, body = send_raw(fuzzed.host, fuzzed.port, _raw(request))
        sent.append(status)
        if status >= 500:
            detail = json.loads(body).get("detail", "")
            assert status == 500, (status, body[:300])
            assert detail.startswith(DOCUMENTED_500), body[:300]
        assert status != 0

    throw()
    assert len(sent) >= 300
    assert fuzzed.alive()
    for key in KEYS:
        state = requests.get(f"{fuzzed.url}/__admin/state/{key[:9]}", timeout=5).json()["session"]
        ping = fuzzed.post("/api/v1/session/pingsession", key=key).json()
        expected = "no_session" if state is None else ("expired" if state["expired"] else "alive")
        assert ping["status"] == expected
        assert ping.get("session_id") == (None if state is None else state["session_id"])
        history = requests.get(f"{fuzzed.url}/__admin/history", params={"key": key[:9]}, timeout=5).json()["sessions"]
        ids = [session["session_id"] for session in history]
        assert len(ids) == len(set(ids)), "a session ended twice"
    assert "Traceback" not in fuzzed.log.read_text()
