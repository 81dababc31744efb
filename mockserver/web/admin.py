"""The mock's control API under /__admin, driven by openapi/admin.yaml as the gateway is by morpheus.yaml.

One handler per operationId (`ADMIN_HANDLERS`; the mock refuses to start when they and the spec
disagree), requests validated from the spec (`admin_requests`), every answer self-checked against
it; errors are RFC 7807 problems.
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mockserver.config import SelfCheck
from mockserver.domain import DomainError, FaultKind, FaultRequest, QueuedReply, ToolCallReply, key_prefix
from mockserver.store import StoreError
from mockserver.web.admin_requests import AdminRequests, Refused
from mockserver.web.errors import check_handlers
from mockserver.web.pipeline import report
from mockserver.web.selfcheck import ResponseChecks
from mockserver.web.state import MockState
from openapi import ADMIN_SPEC_PATH, JSON, Operation, Spec, UndocumentedResponse, Validators, load_spec

PREFIX = "/__admin"
TOKEN_HEADER = "x-admin-token"
PROBLEM = "application/problem+json"
OK, CREATED = 200, 201
Answer = tuple[int, Any]
"""A handler's status and JSON body."""


@dataclass(frozen=True)
class AdminCall:
    """An admin request the spec accepted: the key prefix in its path, its typed query, its JSON body."""

    prefix: str
    query: Mapping[str, Any]
    body: Any


AdminHandler = Callable[[MockState, AdminCall], Awaitable[Answer]]


class Problem(Exception):
    """An admin request the mock refuses; rendered as application/problem+json."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail

    def body(self) -> dict[str, Any]:
        return {"type": "about:blank", "title": self.title, "status": self.status, "detail": self.detail}


def _invalid(detail: str) -> Problem:
    return Problem(422, "Invalid request", detail)


async def get_state(state: MockState, call: AdminCall) -> Answer:
    now = state.clock.now()
    return OK, {"now": now, "keys": [await _key_state(state, key, now) for key in await state.book.prefixes()]}


async def _key_state(state: MockState, key: str, now: float) -> dict[str, Any]:
    """Both views of the key: the gateway's active row and the sessions open on chain (after the due syncs)."""
    record = await state.book.record(key)
    session = record.active
    orphans = {s.session_id for s in record.orphans()}
    chain = [{**s.to_json(now), "in_gateway": s.session_id not in orphans} for s in record.chain]
    live = session is None or record.open_on_chain(session.session_id)
    return {
        "key": key,
        "session": None if session is None else {**session.to_json(now), "open_on_chain": live},
        "chain": chain,
        "synced_at": record.synced_at,
    }


async def run_sync(state: MockState, call: AdminCall) -> Answer:
    """One background sync pass now, as the gateway's 60-second loop runs it."""
    key = (call.body or {}).get("key")
    return OK, {"retired": await state.book.sync(key), "now": state.clock.now()}


async def reset_state(state: MockState, call: AdminCall) -> Answer:
    await state.book.reset()
    await state.journal.clear()
    return OK, {"reset": "all"}


async def get_key_state(state: MockState, call: AdminCall) -> Answer:
    return OK, await _key_state(state, call.prefix, state.clock.now())


async def reset_key_state(state: MockState, call: AdminCall) -> Answer:
    await state.book.reset(call.prefix)
    return OK, {"reset": call.prefix}


async def get_history(state: MockState, call: AdminCall) -> Answer:
    now = state.clock.now()
    sessions = await state.book.history(call.query.get("key"), call.query.get("limit"))
    return OK, {"sessions": [session.to_json(now) for session in sessions]}


async def list_keys(state: MockState, call: AdminCall) -> Answer:
    keys = state.keys
    return OK, {
        "keys": await keys.describe(),
        "accept_any_key": keys.accept_any,
        "revoked_keys_work": keys.revoked_keys_work,
    }


async def add_key(state: MockState, call: AdminCall) -> Answer:
    if "key" in call.body:
        return CREATED, {"prefix": await state.keys.add(call.body["key"])}
    return CREATED, {"prefix": await state.keys.add_legacy(call.body["legacy_prefix"])}


async def revoke_key(state: MockState, call: AdminCall) -> Answer:
    try:
        await state.keys.revoke(call.prefix)
    except DomainError as error:
        raise Problem(404, "Unknown key", str(error)) from None
    return OK, {"prefix": call.prefix, "revoked": True}


async def get_scenario(state: MockState, call: AdminCall) -> Answer:
    return OK, _scenario(state)


async def set_scenario(state: MockState, call: AdminCall) -> Answer:
    name = call.body["name"]
    state.scenario.name = None if name is None else name.strip()
    return OK, _scenario(state)


def _scenario(state: MockState) -> dict[str, object]:
    return {"name": state.scenario.name, "recording": state.config.record is not None}


async def get_clock(state: MockState, call: AdminCall) -> Answer:
    return OK, _clock(state)


async def set_clock(state: MockState, call: AdminCall) -> Answer:
    await _controllable(state).set(float(call.body["now"]))
    return OK, _clock(state)


async def advance_clock(state: MockState, call: AdminCall) -> Answer:
    await _controllable(state).advance(float(call.body["seconds"]))
    return OK, _clock(state)


def _clock(state: MockState) -> dict[str, Any]:
    now = state.clock.now()
    return {"now": now, "iso": datetime.fromtimestamp(now, UTC).isoformat()}


def _controllable(state: MockState) -> Any:
    if not (hasattr(state.clock, "set") and hasattr(state.clock, "advance")):
        raise Problem(409, "Clock not controllable", "this mock was started with a clock that cannot be moved")
    return state.clock


async def list_faults(state: MockState, call: AdminCall) -> Answer:
    return OK, {"faults": [fault.to_json() for fault in state.faults.list()]}


async def arm_fault(state: MockState, call: AdminCall) -> Answer:
    await _known_target(state, call.body.get("key"), call.body.get("operation"))
    return CREATED, (await state.faults.arm_request(FaultRequest.from_json(call.body))).to_json()


async def _known_target(state: MockState, key: str | None, operation: str | None) -> None:
    """A fault for a key or an operation the mock does not know would never be used: refuse it."""
    if key is not None and not state.keys.knows(key):
        known = ", ".join(await state.keys.prefixes()) or "none"
        raise _invalid(
            f"no API key with the prefix {key_prefix(key)!r} is registered (known: {known}); "
            "arm a fault by a registered key's 9-character prefix, or without 'key' for every key"
        )
    operations = [op.operation_id for op in state.spec.operations]
    if operation is not None and operation not in operations:
        raise _invalid(f"'operation' must be one of {', '.join(operations)}")


async def clear_faults(state: MockState, call: AdminCall) -> Answer:
    kind = call.query.get("kind")
    key = call.query.get("key")
    return OK, {"cleared": await state.faults.clear(None if kind is None else FaultKind(kind), key)}


async def _known_key(state: MockState, prefix: str) -> None:
    if not state.keys.knows(prefix):
        known = ", ".join(await state.keys.prefixes()) or "none"
        raise Problem(404, "Unknown key", f"no API key with the prefix {prefix!r} is registered (known: {known})")


def _automation(state: MockState, prefix: str) -> dict[str, Any]:
    setting = state.automation.setting(prefix)
    return {
        "prefix": prefix,
        "enabled": setting.enabled,
        "duration": setting.duration,
        "system": state.automation.system,
        "effective": state.automation.effective(prefix).enabled,
    }


async def get_automation(state: MockState, call: AdminCall) -> Answer:
    await _known_key(state, call.prefix)
    return OK, _automation(state, call.prefix)


async def set_automation(state: MockState, call: AdminCall) -> Answer:
    await _known_key(state, call.prefix)
    await state.automation.change(call.prefix, enabled=call.body.get("enabled"), duration=call.body.get("duration"))
    return OK, _automation(state, call.prefix)


async def list_replies(state: MockState, call: AdminCall) -> Answer:
    return OK, {"replies": [reply.to_json() for reply in state.replies.listed()]}


async def queue_reply(state: MockState, call: AdminCall) -> Answer:
    body = call.body
    key = body.get("key")
    if key is not None and not state.keys.knows(key):
        raise _invalid(f"no API key with the prefix {key_prefix(key)!r} is registered; queue by a registered prefix")
    error = body.get("error") or {}
    calls = body.get("tool_calls", ())
    reply = QueuedReply(
        key=key,
        content=body.get("content"),
        tool_calls=tuple(ToolCallReply(call["name"], _arguments(call.get("arguments", {}))) for call in calls),
        finish_reason=body.get("finish_reason"),
        error_status=error.get("status"),
        error_body=error.get("body"),
        break_after=body.get("break_after"),
        chunk_delay=float(body.get("chunk_delay", 0.0)),
        raw_body=body.get("raw_body"),
    )
    return CREATED, (await state.replies.push(reply)).to_json()


def _arguments(arguments: dict[str, Any] | str) -> str:
    """A tool call's arguments as the JSON text the provider sends."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


async def clear_replies(state: MockState, call: AdminCall) -> Answer:
    return OK, {"cleared": await state.replies.clear(call.query.get("key"))}


async def get_journal(state: MockState, call: AdminCall) -> Answer:
    return OK, {"entries": await state.journal.entries(key=call.query.get("key"), limit=call.query.get("limit"))}


async def clear_journal(state: MockState, call: AdminCall) -> Answer:
    return OK, {"cleared": await state.journal.clear()}


ADMIN_HANDLERS: dict[str, AdminHandler] = {
    handler.__name__: handler
    for handler in (
        get_state,
        reset_state,
        get_key_state,
        reset_key_state,
        run_sync,
        get_history,
        list_keys,
        add_key,
        revoke_key,
        get_automation,
        set_automation,
        list_replies,
        queue_reply,
        clear_replies,
        get_clock,
        set_clock,
        advance_clock,
        list_faults,
        arm_fault,
        clear_faults,
        get_journal,
        clear_journal,
        get_scenario,
        set_scenario,
    )
}


def check_admin_table(spec: Spec) -> None:
    """Every admin.yaml operation has a handler and every handler an operation, or the mock does not start."""
    check_handlers("admin.yaml", {operation.operation_id for operation in spec.operations}, set(ADMIN_HANDLERS))


def admin_routes(state: MockState) -> list[Route]:
    """One Route per admin.yaml path (so 405 answers carry every allowed method), dispatching on the method."""
    requests, checks, paths = _admin_api()
    return [
        Route(path, _dispatcher(state, requests, checks, operations), methods=list(operations))
        for path, operations in paths.items()
    ]


@functools.cache
def _admin_api() -> tuple[AdminRequests, ResponseChecks, dict[str, dict[str, Operation]]]:
    """admin.yaml's request checks, compiled self-check and operations by path and method: built once per
    process (they hold no app's state), not again for every app (the fixture makes one per test)."""
    spec = load_spec(ADMIN_SPEC_PATH)
    validators = Validators(spec)
    paths: dict[str, dict[str, Operation]] = {}
    for operation in spec.operations:
        paths.setdefault(operation.path, {})[operation.method] = operation
    return AdminRequests(spec, validators), ResponseChecks(spec, validators), paths


def _dispatcher(
    state: MockState, requests: AdminRequests, checks: ResponseChecks, operations: dict[str, Operation]
) -> Callable[[Request], Awaitable[Response]]:
    async def dispatch(request: Request) -> Response:
        operation = operations[request.method]
        operation_id = operation.operation_id
        try:
            _authorize(state, request)
            query = requests.query(operation_id, request.query_params)
            body = requests.body(operation_id, await request.body())
            call = AdminCall(request.path_params.get("prefix", ""), query, body)
            status, answer = await ADMIN_HANDLERS[operation_id](state, call)
        except Problem as problem:
            status, answer = problem.status, problem.body()
        except (Refused, DomainError) as error:  # a value the spec or the domain refuses (a time out of range, ...)
            status, answer = 422, _invalid(str(error)).body()
        except StoreError as error:
            down = Problem(503, "Store unavailable", f"{error}; the mock answers again once the store does")
            status, answer = down.status, down.body()
        media = JSON if status < 400 else PROBLEM
        response = JSONResponse(answer, status_code=status, media_type=media)
        if state.config.self_check is not SelfCheck.OFF:  # the JSON sent, as the client reads it
            sent = bytes(response.body)
            report(state, operation_id, status, _problems(checks, operation_id, status, sent, media))
        return response

    return dispatch


def _problems(checks: ResponseChecks, operation_id: str, status: int, sent: bytes, media: str) -> list[str]:
    """The self-check of an admin answer against admin.yaml: JSON by the gateway's compiled checks, problems
    (`application/problem+json`) by their schema."""
    answer = json.loads(sent)
    try:
        if media == JSON:
            return checks.problems(operation_id, status, answer, sent)
        return [str(error) for error in checks.validators.body_errors(operation_id, status, answer, media)]
    except UndocumentedResponse as error:
        return [str(error)]


def _authorize(state: MockState, request: Request) -> None:
    token = state.config.admin_token
    if token is None:
        return
    given = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Problem(401, "Admin token required", f"send the admin token in the {TOKEN_HEADER} header")
