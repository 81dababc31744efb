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
from starlette.types import Receive

from mockserver.config import SelfCheck
from mockserver.domain import (
    AUTH_STEPS,
    AuthBackendFailed,
    AuthenticationFailed,
    CloseFailed,
    CreateFailed,
    CreateRefused,
    DomainError,
    KeyLookupFailed,
    auth_error,
)
from mockserver.redis_store import StoreError
from mockserver.web.errors import SelfCheckFailed
from mockserver.web.handlers import HANDLERS, Call, Reply
from mockserver.web.state import MockState
from mockserver.web.validation import BodyParseError, ValidationFailure, read_body, validate
from openapi import Operation

logger = logging.getLogger("mockserver")
# JSONResponse's options; json.dumps builds a new encoder with them on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
AUTH_HEADERS = {"WWW-Authenticate": "Bearer"}
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


def store_reply(error: StoreError) -> Reply:
    """The shared store failed: the gateway's answer to a failing database, a JSON 500."""
    logger.error("%s", error)
    return Reply(500, {"detail": f"Unexpected error: {error}"})


def endpoint_for(state: MockState, operation: Operation) -> Endpoint:
    """The Starlette endpoint that serves `operation` as the gateway did."""
    handler = HANDLERS[operation.operation_id]

    async def endpoint(request: Request) -> Response:
        try:
            reply = await _answer(state, operation, request)
        except ClientDisconnect:
            return Response(status_code=CLIENT_CLOSED)  # nobody is left to read it; the journal notes it
        return respond(state, operation.operation_id, reply)

    async def _answer(state: MockState, operation: Operation, request: Request) -> Reply:
        body: object = None
        if operation.request_body is not None:
            body = read_body(operation.operation_id, request.headers.get("content-type"), await request.body())
            if isinstance(body, ValidationFailure | BodyParseError):
                return _failure(body)
        try:
            key = _authenticate(state, operation, request)
            checked = validate(operation.operation_id, query_items(request), body)
            if isinstance(checked, ValidationFailure):
                return _failure(checked)
            if key is not None:
                await _latency(state, key, operation.operation_id, request)
            return handler(state, Call(operation.operation_id, key, checked.query, checked.body))
        except DomainError as error:
            return error_reply(error)
        except StoreError as error:
            return store_reply(error)

    endpoint.__name__ = operation.operation_id
    return endpoint


async def _latency(state: MockState, key: str, operation_id: str, request: Request) -> None:
    """An armed `latency` fault's delay, before anything changes.

    Raises:
        ClientDisconnect: the client left during the delay; the operation does not happen.
    """
    delay = state.faults.latency(key, operation_id)
    if delay and await client_left(request.receive, delay):
        raise ClientDisconnect()


async def client_left(receive: Receive, seconds: float) -> bool:
    """Wait `seconds`; True as soon as the client disconnects (the request body is already read)."""

    async def disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(disconnect(), seconds)
    except TimeoutError:
        return False
    return True


def _authenticate(state: MockState, operation: Operation, request: Request) -> str | None:
    """The key's identity; the gateway's key dependencies (and their armed faults) run before validation."""
    key = state.keys.authenticate(request.headers.get("authorization")) if operation.requires_api_key else None
    if key is not None:
        for step in AUTH_STEPS:
            fault = state.faults.take(step, key)
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
