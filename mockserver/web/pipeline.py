"""The gateway's order of checks for one operation, and the domain error -> HTTP table.

Order (gateway-behaviour.md 2.4): the JSON body is parsed first (422 json_invalid even without a
key), then the API key (401), then query and body validation (one collected 422), then the
handler. Every answer goes through the self-check against the spec.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from mockserver.config import SelfCheck
from mockserver.domain import (
    AUTH_STEPS,
    Attempt,
    AuthBackendFailed,
    AuthenticationFailed,
    CloseFailed,
    CreateFailed,
    CreateRefused,
    DomainError,
    KeyLookupFailed,
    auth_error,
)
from mockserver.web.errors import SelfCheckFailed
from mockserver.web.handlers import HANDLERS, Call, Reply
from mockserver.web.state import MockState
from mockserver.web.validation import BodyParseError, ValidationFailure, read_body, validate
from openapi import Operation

logger = logging.getLogger("mockserver")
# JSONResponse's options; json.dumps builds a new encoder with them on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
AUTH_HEADERS = {"WWW-Authenticate": "Bearer"}
# The Stainless SDKs (OpenAI's among them) number each try of a call; a retry may repeat an idempotency key.
RETRY_COUNT_HEADER = "x-stainless-retry-count"
IDEMPOTENCY_HEADER = "idempotency-key"
CLIENT_CLOSED = 499  # nginx's code for "the client closed the connection before the answer"

Endpoint = Callable[[Request], Awaitable[Response]]


def error_reply(error: DomainError) -> Reply:
    """The one table from domain errors to the gateway's statuses."""
    if isinstance(error, AuthenticationFailed):
        return Reply(401, {"detail": str(error)}, AUTH_HEADERS)
    if isinstance(error, KeyLookupFailed | CreateRefused):
        return Reply(400, {"detail": str(error)})
    if isinstance(error, CreateFailed | CloseFailed | AuthBackendFailed):
        return Reply(500, {"detail": str(error)})
    return Reply(500, {"detail": f"Unexpected error: {error}"})


def endpoint_for(state: MockState, operation: Operation) -> Endpoint:
    """The Starlette endpoint that serves `operation` as the gateway did."""
    handler = HANDLERS[operation.operation_id]

    async def endpoint(request: Request) -> Response:
        try:
            reply, key = await _answer(state, operation, request)
        except ClientDisconnect:
            return Response(status_code=CLIENT_CLOSED)  # nobody is left to read it; the journal notes it
        if reply.status == 200 and operation.requires_api_key:
            delay = state.faults.latency(str(key), operation.operation_id)
            if delay:
                await asyncio.sleep(delay)
        return respond(state, operation.operation_id, reply)

    async def _answer(state: MockState, operation: Operation, request: Request) -> tuple[Reply, str | None]:
        """The reply, and the key's identity once it is known (None before authentication)."""
        body: object = None
        if operation.request_body is not None:
            body = read_body(operation.operation_id, request.headers.get("content-type"), await request.body())
            if isinstance(body, ValidationFailure | BodyParseError):
                return _failure(body), None
        key = None
        attempt = attempt_of(request, operation.operation_id)
        try:
            key = _authenticate(state, operation, request, attempt)
            checked = validate(operation.operation_id, query_items(request), body)
            if isinstance(checked, ValidationFailure):
                return _failure(checked), key
            return handler(state, Call(operation.operation_id, key, checked.query, checked.body, attempt)), key
        except DomainError as error:
            return error_reply(error), key

    endpoint.__name__ = operation.operation_id
    return endpoint


def attempt_of(request: Request, operation_id: str) -> Attempt:
    """Which try of a client's call this request is, from the SDKs' retry headers."""
    headers = request.headers
    count = headers.get(RETRY_COUNT_HEADER, "0").strip()
    return Attempt(operation_id, count.isdigit() and int(count) > 0, headers.get(IDEMPOTENCY_HEADER))


def _authenticate(state: MockState, operation: Operation, request: Request, attempt: Attempt) -> str | None:
    """The key's identity; the gateway's key dependencies (and their armed faults) run before validation."""
    key = state.keys.authenticate(request.headers.get("authorization")) if operation.requires_api_key else None
    if key is not None:
        for step in AUTH_STEPS:
            fault = state.faults.take(step, key, attempt=attempt)
            if fault is not None:
                raise auth_error(fault)
    return key


def query_items(request: Request) -> list[tuple[str, str]]:
    """`request.query_params.multi_items()` without building Starlette's multidict (the same parse)."""
    return parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)


def _failure(failure: ValidationFailure | BodyParseError) -> Reply:
    if isinstance(failure, BodyParseError):
        return Reply(400, {"detail": failure.detail})
    return Reply(422, failure.body())


class GatewayJSONResponse(JSONResponse):
    """Starlette's JSONResponse, byte for byte, with its encoder built once."""

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode("utf-8")


def respond(state: MockState, operation_id: str, reply: Reply) -> Response:
    """The JSON response, after the self-check of its body against the spec."""
    if state.config.self_check is not SelfCheck.OFF:
        check_reply(state, operation_id, reply)
    return GatewayJSONResponse(reply.body, status_code=reply.status, headers=dict(reply.headers))


def check_reply(state: MockState, operation_id: str, reply: Reply) -> None:
    problems = state.responses.problems(operation_id, reply.status, reply.body)
    if not problems:
        return
    failure = SelfCheckFailed(operation_id, reply.status, problems)
    if state.config.self_check is SelfCheck.RAISE:
        raise failure
    logger.error("%s", failure)
