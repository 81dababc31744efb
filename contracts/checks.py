"""Schemathesis checks of the generated cases' answers: readable body errors and the gateway's own 500s."""

from __future__ import annotations

import json
from typing import Any

import schemathesis

from contracts.answers import VALIDATORS, assert_body_conforms
from contracts.api import STREAM_MEDIA_TYPE
from contracts.sse import check_events
from openapi import UndocumentedResponse

# The beginnings of every 500 text the gateway's session routes produce (gateway-behaviour.md section 3).
GATEWAY_500_PREFIXES = (
    "Error from proxy router: ",
    "Unexpected error: ",
    "Unexpected error validating API key: ",
    "Error closing session: ",
    "Error fetching active models: ",
    # chat completions and embeddings (chat-completions.md 2.5, 2.11, 3)
    "Error handling session: ",
    "Embeddings request failed: ",
    "Internal server error: ",
)


def _content_type(response: Any) -> str:
    values = [value for name, value in response.headers.items() if name.lower() == "content-type"]
    return str(values[0][0]) if values and values[0] else ""


def _json_or_none(response: Any) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


@schemathesis.check
def body_matches_the_gateway_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every documented JSON body, checked with readable messages (JSON path + keyword)."""
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id is None or "json" not in _content_type(response):
        return True
    try:
        VALIDATORS.response_key(operation_id, response.status_code)
    except UndocumentedResponse:
        return True  # an undocumented status is status_code_conformance's finding (405s are expected)
    assert_body_conforms(operation_id, response.status_code, _json_or_none(response))
    return None


@schemathesis.check
def server_errors_are_the_gateways(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 500 is allowed (the gateway answers documented 500s, e.g. for durations the chain refuses),
    but only with one of the gateway's own texts."""
    if response.status_code != 500:
        return True
    body = _json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return None  # chat's upstream failure, `{"error": {message, type}}`: its shape is the body check's
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str) or not detail.startswith(GATEWAY_500_PREFIXES):
        raise AssertionError(f"500 with a body the gateway never sends: {response.content[:200]!r}")
    return None


def is_streamed(response: Any) -> bool:
    """Whether a Schemathesis response is a `text/event-stream` (a streamed chat)."""
    return _content_type(response).startswith(STREAM_MEDIA_TYPE)


@schemathesis.check
def streams_match_the_gateway_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """A `text/event-stream` answer (a streamed chat), event by event: SSE framing, each chunk and error
    frame against the spec, and its end (`data: [DONE]`, or one error frame)."""
    if not is_streamed(response):
        return True
    check_events(response.content.decode("utf-8", "replace"))
    return None
