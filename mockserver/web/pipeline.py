"""The gateway's order of checks for one operation, and the domain error -> HTTP table.

Order (gateway-behaviour.md 2.4): the JSON body is parsed first (422 json_invalid even without a
key), then the API key (401), then query and body validation (one collected 422), then the
handler. Every answer goes through the self-check against the spec.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mockserver.config import SelfCheck
from mockserver.domain import (
    Attempt,
    AuthBackendFailed,
    AuthenticationFailed,
    AutomationDisabled,
    ChatSessionFailed,
    CloseFailed,
    CreateFailed,
    CreateRefused,
    DomainError,
    KeyLookupFailed,
)
from mockserver.store import StoreError
from mockserver.web.errors import SelfCheckFailed
from mockserver.web.handlers import HANDLERS, Answered, Call, Reply, StreamReply
from mockserver.web.state import MockState
from mockserver.web.validation import BodyParseError, RememberedValidation, ValidationFailure, read_body
from openapi import Operation

logger = logging.getLogger("mockserver")
# JSONResponse's options; json.dumps builds a new encoder with them on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
AUTH_HEADERS = {"WWW-Authenticate": "Bearer"}
# The Stainless SDKs (OpenAI's among them) number each try of a call; a retry may repeat an idempotency key.
RETRY_COUNT_HEADER = b"x-stainless-retry-count"
IDEMPOTENCY_HEADER = b"idempotency-key"
CLIENT_CLOSED = 499  # nginx's code for "the client closed the connection before the answer"


def error_reply(error: DomainError) -> Reply:
    """The one table from domain errors to the gateway's statuses."""
    if isinstance(error, AuthenticationFailed):
        return Reply(401, {"detail": str(error)}, AUTH_HEADERS)
    if isinstance(error, KeyLookupFailed | CreateRefused):
        return Reply(400, {"detail": str(error)})
    if isinstance(error, CreateFailed | CloseFailed | AuthBackendFailed):
        return Reply(500, {"detail": str(error)})
    if isinstance(error, AutomationDisabled):
        return Reply(403, {"detail": str(error)})
    if isinstance(error, ChatSessionFailed):
        return Reply(500, {"detail": f"Error handling session: {error}"})
    return Reply(500, {"detail": f"Unexpected error: {error}"})


def store_reply(error: StoreError) -> Reply:
    """The shared store failed: the gateway's answer to a failing database, a JSON 500."""
    logger.error("%s", error)
    return Reply(500, {"detail": f"Unexpected error: {error}"})


RawHeaders = list[tuple[bytes, bytes]]
Answer = tuple[int, RawHeaders, bytes | AsyncIterator[bytes]]
"""What goes on the wire: status, headers (Starlette's order), body (or a stream's frames, made as they are sent)."""
LEFT_MID_STREAM = "mockserver.left_mid_stream"
"""Set in the ASGI scope when the client left before a stream ended; the journal records it as 499."""
UPSTREAM_CALLS = "mockserver.upstream_calls"
"""Set in the ASGI scope to the proxy-router's status per attempt of a chat or embeddings request (journaled)."""
STREAM_HEADERS: RawHeaders = [
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
]

ANSWER_CLIENT_CLOSED: Answer = (CLIENT_CLOSED, [(b"content-length", b"0")], b"")
"""Nobody is left to read it; the journal notes it."""


class ClientLeft(Exception):
    """The client disconnected before the answer: the operation does not happen."""


class OperationEndpoint:
    """One operation served as the gateway did, reachable two ways with the same answer.

    `endpoint` is the Starlette endpoint of the operation's Route (the full stack); `serve` is the
    direct path that `GatewayMiddleware` takes when the layers below would only pass a request through.
    """

    def __init__(self, state: MockState, operation: Operation) -> None:
        self.state = state
        self.operation = operation
        self.operation_id = operation.operation_id
        self.handler = HANDLERS[operation.operation_id]
        self.has_body = operation.request_body is not None
        self.models = state.requests[operation.operation_id]
        self.validation = RememberedValidation(self.models)

    async def endpoint(self, request: Request) -> Response:
        try:
            body = await request.body() if self.has_body else b""
            status, headers, content = await self.answer(request.scope, body, request.receive)
        except (ClientDisconnect, ClientLeft):
            status, headers, content = ANSWER_CLIENT_CLOSED
        if not isinstance(content, bytes):
            return Streamed(status, headers, content)
        response = Response(content, status_code=status)
        response.raw_headers = headers
        return response

    async def serve(self, scope: Scope, receive: Receive) -> Answer:
        """The answer, reading the body from `receive` (no Request object, no Response object)."""
        body = b""
        if self.has_body:
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return ANSWER_CLIENT_CLOSED
                body += message.get("body", b"")
                more = message.get("more_body", False)
        try:
            return await self.answer(scope, body, receive)
        except ClientLeft:
            return ANSWER_CLIENT_CLOSED

    async def answer(self, scope: Scope, raw_body: bytes, receive: Receive) -> Answer:
        reply = await self._reply(scope, raw_body, receive)
        if reply.upstream:
            scope[UPSTREAM_CALLS] = reply.upstream
        return render(self.state, self.operation_id, reply)

    async def _reply(self, scope: Scope, raw_body: bytes, receive: Receive) -> Answered:
        authorization, content_type = _headers(scope["headers"])
        body: object = None
        if self.has_body:
            body = read_body(self.models, content_type, raw_body)
            if isinstance(body, ValidationFailure | BodyParseError):
                return _failure(body)
        try:
            attempt = attempt_of(scope["headers"], self.operation_id)
            key = await _authenticate(self.state, self.operation, authorization, attempt)
            checked = self.validation.validate(scope["query_string"], content_type, raw_body, body)
            if isinstance(checked, ValidationFailure):
                return _failure(checked)
            if key is not None:
                await _latency(self.state, key, self.operation_id, receive)
            return await self.handler(self.state, Call(self.operation_id, key, checked.query, checked.body, attempt))
        except DomainError as error:
            return error_reply(error)
        except StoreError as error:
            return store_reply(error)


def endpoint_for(state: MockState, operation: Operation) -> OperationEndpoint:
    """The endpoint that serves `operation` as the gateway did."""
    return OperationEndpoint(state, operation)


def _headers(headers: RawHeaders) -> tuple[str | None, str | None]:
    """The first Authorization and Content-Type values, as `Headers.get` finds them (ASGI names are lowercase)."""
    authorization = content_type = None
    for name, value in headers:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
    return authorization, content_type


async def _latency(state: MockState, key: str, operation_id: str, receive: Receive) -> None:
    """An armed `latency` fault's delay, before anything changes.

    Raises:
        ClientLeft: the client left during the delay; the operation does not happen.
    """
    delay = await state.faults.latency(key, operation_id)
    if delay and await client_left(receive, delay):
        raise ClientLeft()


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


def attempt_of(headers: RawHeaders, operation_id: str) -> Attempt:
    """Which try of a client's call this request is, from the SDKs' retry headers."""
    count, idempotency_key = "", None
    for name, value in headers:
        if name == RETRY_COUNT_HEADER and not count:
            count = value.decode("latin-1").strip()
        elif name == IDEMPOTENCY_HEADER and idempotency_key is None:
            idempotency_key = value.decode("latin-1")
    return Attempt(operation_id, count.isdigit() and int(count) > 0, idempotency_key)


async def _authenticate(
    state: MockState, operation: Operation, authorization: str | None, attempt: Attempt
) -> str | None:
    """The key's identity; the gateway's key dependencies (and their armed faults) run before validation."""
    active_only = bool(operation.node.get("x-active-keys-only", False))
    key = await state.keys.authenticate(authorization, active_only=active_only) if operation.requires_api_key else None
    error = None if key is None else await state.dependencies.check(key, attempt)
    if error is not None:
        raise error
    return key


def _failure(failure: ValidationFailure | BodyParseError) -> Reply:
    if isinstance(failure, BodyParseError):
        return Reply(400, {"detail": failure.detail})
    return Reply(422, failure.body())


def render(state: MockState, operation_id: str, reply: Answered) -> Answer:
    """The JSON answer as Starlette's JSONResponse sends it, its bytes self-checked against the spec before
    they are sent; a stream as the gateway's StreamingResponse starts it (its frames follow as they are
    made, each self-checked before it is sent). A provider's body the gateway relays as it came (a queued
    `raw_body`) is the user's, not the mock's: it is not self-checked."""
    checked = state.config.self_check is not SelfCheck.OFF and not reply.relayed
    if isinstance(reply, StreamReply):
        frames = reply.frames
        if checked:
            frames = checked_frames(state, operation_id, reply.status, frames)
        return reply.status, list(STREAM_HEADERS), frames
    body = _ENCODER.encode(reply.body).encode("utf-8")
    if checked:
        check_reply(state, operation_id, reply, body)
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()]
    headers += [(b"content-length", str(len(body)).encode("latin-1")), (b"content-type", b"application/json")]
    return reply.status, headers, body


class Streamed(Response):
    """A stream on the full stack: sent frame by frame, watching for the client leaving."""

    def __init__(self, status: int, headers: RawHeaders, frames: AsyncIterator[bytes]) -> None:
        self.status_code = status
        self.raw_headers = headers
        self.frames = frames
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send_stream(scope, self.frames, receive, send)


async def send_stream(scope: Scope, frames: AsyncIterator[bytes], receive: Receive, send: Send) -> None:
    """Send each frame as soon as it is made; stop (and mark the scope) when the client leaves."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        async for frame in _until(frames, watcher):
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        if watcher.done():
            scope[LEFT_MID_STREAM] = True
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()


async def _until(frames: AsyncIterator[bytes], stop: asyncio.Future[None]) -> AsyncIterator[bytes]:
    """The frames, until they end or `stop` completes (whichever comes first)."""
    iterator = aiter(frames)
    while True:
        following: asyncio.Future[bytes] = asyncio.ensure_future(anext(iterator))
        waiting: list[asyncio.Future[Any]] = [following, stop]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not following.done():
            following.cancel()
            return
        try:
            yield following.result()
        except StopAsyncIteration:
            return


def check_reply(state: MockState, operation_id: str, reply: Reply, sent: bytes) -> None:
    report(state, operation_id, reply.status, state.responses.problems(operation_id, reply.status, reply.body, sent))


async def checked_frames(
    state: MockState, operation_id: str, status: int, frames: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """The stream's frames, each checked against the spec before it is sent, and then its end."""
    check = state.responses.stream(operation_id, status)
    async for frame in frames:
        report(state, operation_id, status, check.frame(frame))
        yield frame
    report(state, operation_id, status, check.end())


def report(state: MockState, operation_id: str, status: int, problems: list[str]) -> None:
    """A self-check's verdict: nothing when it conforms; else raised (tests) or logged (serving)."""
    if not problems:
        return
    failure = SelfCheckFailed(operation_id, status, problems)
    if state.config.self_check is SelfCheck.RAISE:
        raise failure
    logger.error("%s", failure)
