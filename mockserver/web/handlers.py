"""One handler per operationId: a validated call in, the gateway's status and body out.

Handlers are coroutines: the state they read and change may be in a shared store, which they await.
Each makes at most one session-book transaction, atomic per key (R8) however it waits. The one
exception is bidsession, which the gateway runs without a lock: it awaits the chain's answer between
its two transactions, so parallel bids of one key collide as they did (observed-v1.14.0.md section 2).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from mockserver.domain import (
    BROKEN_STREAM,
    FIRST_TRY,
    Attempt,
    AutomationDisabled,
    ChatSessionFailed,
    CloseKind,
    Completion,
    PingKind,
    Prompt,
    UpstreamFailed,
    UpstreamUnreachable,
)
from mockserver.domain.catalogue import APPROVE_NO_SIGNING_KEY
from mockserver.web.errors import HandlerMisuse
from mockserver.web.state import MockState

CREATED = "Session created and associated with API key"
LLM, EMBEDDINGS = "LLM", "EMBEDDINGS"  # the gateway's model types of chat and embeddings
# The gateway's pauses between its attempts at the proxy-router: non-stream chat tries twice, 1 s apart;
# embeddings three times, 1 s then 2 s apart; a stream once (chat-completions.md 2.6 and 3).
CHAT_PAUSES, EMBEDDING_PAUSES = (1.0,), (1.0, 2.0)
DONE_FRAME = b"data: [DONE]\n\n"
FALLBACK_NOTE = "Private Key not set, using fallback key (FOR DEBUGGING ONLY)"
CLOSE_MESSAGES = {
    CloseKind.NONE: "No active session found to close",
    CloseKind.EXPIRED: "Expired session marked as inactive",
    CloseKind.CLOSED: "Session closed successfully",
}
PING_MESSAGES = {
    PingKind.NO_SESSION: "No active session found for this API key",
    PingKind.EXPIRED: "Session is expired and has been marked as inactive",
    PingKind.ALIVE: "Session is alive",
    PingKind.DEAD: "Session is dead and has been closed",
}


@dataclass(frozen=True)
class Call:
    """A request that passed authentication and validation."""

    operation_id: str
    key: str | None
    query: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    attempt: Attempt = FIRST_TRY  # which try of the client's call this is (faults that cover retries)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    upstream: tuple[int | None, ...] = ()  # the proxy-router's status per attempt (journaled)
    relayed: bool = False  # the provider's own bytes, passed on as the gateway does: not the mock's to self-check


@dataclass(frozen=True)
class StreamReply:
    """A 200 `text/event-stream` answer whose frames are made while it is sent (SSE, `data: ...` each)."""

    frames: AsyncIterator[bytes]
    status: int = 200
    upstream: tuple[int | None, ...] = ()
    relayed: bool = False


Answered = Reply | StreamReply
Handler = Callable[[MockState, Call], Awaitable[Answered]]


def _key(call: Call) -> str:
    if call.key is None:
        raise HandlerMisuse(f"{call.operation_id} runs only after authentication, and its call has no key")
    return call.key


def _body(call: Call) -> Mapping[str, Any]:
    if call.body is None:
        raise HandlerMisuse(f"{call.operation_id} takes a validated body, and its call has none")
    return call.body


def _with_note(state: MockState, body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "note": FALLBACK_NOTE} if state.config.fallback_key_note else body


async def create_model_session_api_v1_session_modelsession_post(state: MockState, call: Call) -> Reply:
    """R1 reuse, R2 switch; `model` echoes the query value as sent."""
    key, requested = _key(call), call.query["model_id"]
    duration = _body(call)["sessionDuration"]
    session = await state.book.create_model_session(
        key,
        requested,
        state.models.resolve(requested),
        duration,
        attempt=call.attempt,
    )
    body = {"success": True, "message": CREATED, "session_id": session.session_id, "api_key_prefix": key}
    return Reply(200, {**body, "model": requested})


async def create_bid_session_api_v1_session_bidsession_post(state: MockState, call: Call) -> Reply:
    """R3: the old session is only deactivated; the row is inserted once the chain has opened the session."""
    key, bid_id = _key(call), call.query["bid_id"]
    duration = _body(call)["sessionDuration"]
    pending = await state.book.begin_bid(key, bid_id, duration, attempt=call.attempt)
    await asyncio.sleep(state.book.bid_open_seconds)
    session = await state.book.finish_bid(pending)
    body = {"success": True, "message": CREATED, "session_id": session.session_id, "api_key_prefix": key}
    return Reply(200, _with_note(state, body))


async def close_session_api_v1_session_closesession_post(state: MockState, call: Call) -> Reply:
    """R4: none, expired or closed; a failed close leaves the session active (500)."""
    outcome = await state.book.close(_key(call), attempt=call.attempt)
    return Reply(200, {"success": True, "message": CLOSE_MESSAGES[outcome.kind], "session_id": outcome.session_id})


async def ping_session_api_v1_session_pingsession_post(state: MockState, call: Call) -> Reply:
    """R5: always 200, told apart by `status`."""
    key = _key(call)
    outcome = await state.book.ping(key, attempt=call.attempt)
    if outcome.kind is PingKind.ERROR:
        message = f"Error checking session status: {outcome.error}"
        return Reply(200, {"status": "error", "message": message, "success": False})
    body: dict[str, Any] = {"status": outcome.kind.value, "message": PING_MESSAGES[outcome.kind]}
    if outcome.session_id is not None:
        body["session_id"] = outcome.session_id
    body["success"] = outcome.kind is PingKind.ALIVE
    if outcome.kind is PingKind.DEAD:
        body["error"] = outcome.error
    return Reply(200, body)


async def approve_spending_api_v1_session_approve_post(state: MockState, call: Call) -> Reply:
    """The tx hash, or the upstream error as a 200 `error` object."""
    key = _key(call)
    if await state.dependencies.missing(key, call.attempt):
        return Reply(200, {"error": {"message": APPROVE_NO_SIGNING_KEY, "type": "PrivateKeyNotFound"}})
    outcome = await state.upstream.approve_spending(key, state.ids, call.attempt)
    if outcome.tx is not None:
        return Reply(200, _with_note(state, {"tx": outcome.tx}))
    error = {"message": outcome.error_message, "type": outcome.error_type}
    return Reply(200, _with_note(state, {"error": error}))


async def list_models_api_v1_models_get(state: MockState, call: Call) -> Reply:
    """The model table, unless its source fails."""
    failure = await state.dependencies.failure(call.attempt)
    if failure is not None:
        return Reply(500, {"detail": f"Error fetching active models: {failure}"})
    return Reply(200, {"object": "list", "data": [model.to_json() for model in state.models.models()]})


async def create_chat_completion_api_v1_chat_completions_post(state: MockState, call: Call) -> Answered:
    """C1-C6: the key's session (or the body's `session_id`), then the provider (two attempts, one for a
    stream: chat-completions.md 2.6); a stream is a StreamReply."""
    prompt = await _prompt(state, call, LLM)
    if _body(call)["stream"]:
        outcome, statuses = await _attempts(state, prompt, (), state.upstream.complete)
        relayed = isinstance(outcome, Completion) and outcome.raw is not None
        return StreamReply(_chat_frames(outcome), upstream=statuses, relayed=relayed)
    outcome, statuses = await _attempts(state, prompt, CHAT_PAUSES, state.upstream.complete)
    if isinstance(outcome, UpstreamFailed):
        error = {"message": str(outcome), "type": _error_type(outcome.status)}
        return Reply(outcome.status, {"error": error}, upstream=statuses)
    if isinstance(outcome, UpstreamUnreachable):
        message = f"Request failed after {len(statuses)} attempts: {outcome}"
        return Reply(503, {"error": {"message": message, "type": "network_error"}}, upstream=statuses)
    if outcome.raw is not None:
        status, body = _relayed(outcome.raw, prompt.session_id)
        return Reply(status, body, upstream=statuses, relayed=status == 200)
    return Reply(200, outcome.body, upstream=statuses)


async def create_embeddings_api_v1_embeddings_post(state: MockState, call: Call) -> Reply:
    """C1-C6 on the same session as chat; automation off is a 500 here, errors are `{"detail": ...}`;
    three attempts at the proxy-router (chat-completions.md 3)."""
    try:
        prompt = await _prompt(state, call, EMBEDDINGS)
    except AutomationDisabled as error:
        raise ChatSessionFailed(str(error)) from None
    body = _body(call)
    given, encoding, dimensions = body["input"], body["encoding_format"], body["dimensions"]
    inputs = [given] if isinstance(given, str) else list(given)

    async def embed(attempt: Prompt) -> dict[str, Any]:
        return await state.upstream.embed(attempt, inputs, encoding, dimensions)

    outcome, statuses = await _attempts(state, prompt, EMBEDDING_PAUSES, embed)
    if isinstance(outcome, UpstreamFailed):
        return Reply(outcome.status, {"detail": f"Embeddings request failed: {outcome}"}, upstream=statuses)
    if isinstance(outcome, UpstreamUnreachable):
        detail = f"Embeddings request failed: Request failed after {len(statuses)} attempts: {outcome}"
        return Reply(503, {"detail": detail}, upstream=statuses)
    return Reply(200, outcome, upstream=statuses)


Asked = TypeVar("Asked")
Failure = UpstreamFailed | UpstreamUnreachable


async def _attempts(
    state: MockState, prompt: Prompt, pauses: tuple[float, ...], ask: Callable[[Prompt], Awaitable[Asked]]
) -> tuple[Asked | Failure, tuple[int | None, ...]]:
    """The gateway's attempts at the proxy-router: after an error status (any 4xx or 5xx) or no connection
    it pauses and asks again, once per pause; the answer or the last failure, and each attempt's status
    (None: unreachable). Its later attempts are retries of the same call (a fault armed with `retries`
    breaks them for free; any other fault spends one use per attempt)."""
    statuses: list[int | None] = []
    waits = iter(pauses)
    while True:
        try:
            answer = await ask(prompt)
        except UpstreamFailed as error:
            failure: Failure = error
            statuses.append(error.status)
        except UpstreamUnreachable as error:
            failure = error
            statuses.append(None)
        else:
            return answer, (*statuses, 200)
        pause = next(waits, None)
        if pause is None:
            return failure, tuple(statuses)
        await state.sleeper.sleep(pause)
        again = await state.book.chain_error(
            prompt.key, prompt.session_id
        )  # the chain asked again, as on every attempt
        prompt = replace(prompt, chain_error=again, attempt=replace(prompt.attempt, retry=True))


def _relayed(raw: str, session_id: str) -> tuple[int, Any]:
    """A provider's 200 body as the gateway relays it: truthy JSON as it is, anything else its 500."""
    try:
        content = json.loads(raw)
    except ValueError:
        message: str | None = f"Unexpected response format from provider: '{raw}'"
    else:
        if content:
            return 200, content
        message = "None"
    return 500, {"error": {"message": message, "type": "unexpected_response_format", "session_id": session_id}}


async def _prompt(state: MockState, call: Call, model_type: str) -> Prompt:
    """The session the request runs on: the body's truthy `session_id` as given (C5), else the key's (C1-C3)."""
    key, body = _key(call), _body(call)
    requested = body["model"]
    model = state.models.model_for(requested, model_type)
    messages = body.get("messages", ())
    session_id = body["session_id"]
    if not session_id:
        vanished = await state.dependencies.find(key, call.attempt)
        if vanished is not None:
            raise vanished  # the key's row was not found under the session lock
        setting = state.automation.effective(key)
        session = await state.book.session_for_chat(
            key,
            model.blockchain_id,
            requested or "",
            automation=setting.enabled,
            duration=setting.duration,
            attempt=call.attempt,
        )
        session_id = session.session_id
    chain_error = await state.book.chain_error(key, session_id)
    return Prompt(key, session_id, model.name, messages, chain_error, call.attempt)


async def _chat_frames(outcome: Completion | Failure) -> AsyncIterator[bytes]:
    """The stream: the provider's chunks then `[DONE]`, or one error frame and the end (chat-completions.md 2.8);
    a raw 200 body is relayed as it came (the gateway does not parse a stream)."""
    if isinstance(outcome, UpstreamFailed):
        yield sse({"error": {"message": str(outcome), "type": _error_type(outcome.status), "status": outcome.status}})
        return
    if isinstance(outcome, UpstreamUnreachable):
        yield _stream_failure(str(outcome))
        return
    if outcome.raw is not None:
        if outcome.raw:
            yield outcome.raw.encode()
        return
    for index, chunk in enumerate(outcome.chunks):
        if outcome.break_after is not None and index >= outcome.break_after:
            yield _stream_failure(BROKEN_STREAM)
            return
        if outcome.chunk_delay:
            await asyncio.sleep(outcome.chunk_delay)
        yield sse(chunk, compact=True)
    yield DONE_FRAME


def sse(data: object, *, compact: bool = False) -> bytes:
    """One SSE frame: the proxy-router's chunks are compact (Go), the gateway's error frames json.dumps's spacing."""
    text = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data)
    return f"data: {text}\n\n".encode()


def _stream_failure(text: str) -> bytes:
    return sse(
        {"error": {"message": f"Failed to create chat completions stream: {text}", "type": "unknown", "status": None}}
    )


def _error_type(status: int) -> str:
    return "client_error" if status < 500 else "server_error"


HANDLERS: dict[str, Handler] = {
    handler.__name__: handler
    for handler in (
        create_model_session_api_v1_session_modelsession_post,
        create_bid_session_api_v1_session_bidsession_post,
        close_session_api_v1_session_closesession_post,
        ping_session_api_v1_session_pingsession_post,
        approve_spending_api_v1_session_approve_post,
        list_models_api_v1_models_get,
        create_chat_completion_api_v1_chat_completions_post,
        create_embeddings_api_v1_embeddings_post,
    )
}
