"""The request path's shortcuts give what the Starlette calls they replace give, byte for byte."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse

from mockserver.config import Config, SelfCheck
from mockserver.web.handlers import Reply
from mockserver.web.middleware import authorization_of
from mockserver.web.pipeline import _headers, render
from mockserver.web.state import build_state
from mockserver.web.validation import query_items

STATE = build_state(Config(self_check=SelfCheck.OFF))

QUERY_CHARACTERS = st.sampled_from([*"ab=&+%;_ 0f\u00e9\u00ff", "%20", "%zz", "%e9", "%C3%A9", "=="])


@given(st.lists(QUERY_CHARACTERS, max_size=12).map("".join))
@settings(derandomize=True, database=None, max_examples=300)
def test_query_items_parse_as_starlette_does(query: str) -> None:
    raw = query.encode("latin-1")
    assert query_items(raw) == QueryParams(raw).multi_items()


BODIES: list[Any] = [
    {"detail": "API key missing"},
    {"detail": [{"type": "int_parsing", "loc": ["body", "sessionDuration"], "input": "é\u2028\x00\n"}]},
    {"input": [1e16, 1.5, -0.0, 2**70, True, None]},
    {"nested": {"a": [], "b": {}}, "ünïcode": "日本"},
    [1, "two", {"3": 4}],
    "text",
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("headers", [{}, {"WWW-Authenticate": "Bearer"}])
def test_the_answer_is_starlettes_json_response(body: Any, headers: dict[str, str]) -> None:
    expected = JSONResponse(body, status_code=401, headers=headers)
    assert render(STATE, "ping", Reply(401, body, headers)) == (401, expected.raw_headers, expected.body)


@pytest.mark.parametrize("body", [{"input": float("nan")}, {"input": float("inf")}])
def test_gateway_json_refuses_what_starlette_refuses(body: Any) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        JSONResponse(body)
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        render(STATE, "ping", Reply(200, body))


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"host", b"x")],
        [(b"authorization", b"Bearer sk-a")],
        [(b"x-a", b"1"), (b"authorization", b"first"), (b"authorization", b"second")],
        [(b"Authorization", b"not lowercase: not an ASGI name")],
        [(b"authorization", "\u00e9".encode("latin-1"))],
    ],
)
def test_the_journal_reads_authorization_as_starlette_headers_do(headers: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "headers": headers}
    assert authorization_of(scope) == Headers(scope={"type": "http", "headers": list(headers)}).get("authorization")


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"content-type", b"application/json"), (b"authorization", b"Bearer a")],
        [(b"content-type", b"text/plain"), (b"content-type", b"application/json"), (b"x", b"y")],
        [(b"authorization", b"first"), (b"authorization", b"second"), (b"content-type", "\u00e9".encode("latin-1"))],
    ],
)
def test_the_endpoint_reads_headers_as_starlette_headers_do(headers: list[tuple[bytes, bytes]]) -> None:
    starlette = Headers(scope={"type": "http", "headers": list(headers)})
    assert _headers(headers) == (starlette.get("authorization"), starlette.get("content-type"))
