"""The request path's shortcuts give what the Starlette calls they replace give, byte for byte."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse

from mockserver.web.middleware import authorization_of
from mockserver.web.pipeline import GatewayJSONResponse, query_items

QUERY_CHARACTERS = st.sampled_from([*"ab=&+%;_ 0f\u00e9\u00ff", "%20", "%zz", "%e9", "%C3%A9", "=="])


@given(st.lists(QUERY_CHARACTERS, max_size=12).map("".join))
@settings(derandomize=True, database=None, max_examples=300)
def test_query_items_parse_as_starlette_does(query: str) -> None:
    raw = query.encode("latin-1")
    request = Request({"type": "http", "query_string": raw, "headers": []})
    assert query_items(request) == QueryParams(raw).multi_items()


BODIES: list[Any] = [
    {"detail": "API key missing"},
    {"detail": [{"type": "int_parsing", "loc": ["body", "sessionDuration"], "input": "é\u2028\x00\n"}]},
    {"input": [1e16, 1.5, -0.0, 2**70, True, None]},
    {"nested": {"a": [], "b": {}}, "ünïcode": "日本"},
    [1, "two", {"3": 4}],
    "text",
]


@pytest.mark.parametrize("body", BODIES)
def test_gateway_json_is_starlettes_json(body: Any) -> None:
    assert GatewayJSONResponse(body).body == JSONResponse(body).body


@pytest.mark.parametrize("body", [{"input": float("nan")}, {"input": float("inf")}])
def test_gateway_json_refuses_what_starlette_refuses(body: Any) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        JSONResponse(body)
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        GatewayJSONResponse(body)


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
