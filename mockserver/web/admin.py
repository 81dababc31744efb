"""The mock's control API under /__admin (openapi/admin.yaml); errors are RFC 7807 problems."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mockserver.domain import DomainError, FaultKind, QueuedReply, ToolCallReply, key_prefix
from mockserver.store import StoreError
from mockserver.web.state import MockState

PREFIX = "/__admin"
TOKEN_HEADER = "x-admin-token"
AdminEndpoint = Callable[[MockState, Request], Awaitable[Response]]


class Problem(Exception):
    """An admin request the mock refuses; rendered as application/problem+json."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail

    def response(self) -> Response:
        body = {"type": "about:blank", "title": self.title, "status": self.status, "detail": self.detail}
        return JSONResponse(body, status_code=self.status, media_type="application/problem+json")


def _invalid(detail: str) -> Problem:
    return Problem(422, "Invalid request", detail)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        value = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise _invalid(f"the body is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise _invalid("the body must be a JSON object")
    return value


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _invalid(f"'{name}' must be a number >= 0")
    return float(value)


def _limit(request: Request) -> int | None:
    raw = request.query_params.get("limit")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise _invalid("'limit' must be an integer >= 1")
    return int(raw)


def _clock(state: MockState) -> dict[str, Any]:
    now = state.clock.now()
    return {"now": now, "iso": datetime.fromtimestamp(now, UTC).isoformat()}


async def get_state(state: MockState, request: Request) -> Response:
    now = state.clock.now()
    keys = [_key_state(state, key, now) for key in state.book.prefixes()]
    return JSONResponse({"now": now, "keys": keys})


def _key_state(state: MockState, key: str, now: float) -> dict[str, Any]:
    """Both views of the key: the gateway's active row and the sessions open on chain (after the due syncs)."""
    record = state.book.record(key)
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


async def run_sync(state: MockState, request: Request) -> Response:
    """One background sync pass now, as the gateway's 60-second loop runs it."""
    body = await _json_object(request) if await request.body() else {}
    key = body.get("key")
    if set(body) - {"key"} or not isinstance(key, str | None):
        raise _invalid('send {} (every key) or {"key": "sk-XXXXXX"}')
    return JSONResponse({"retired": state.book.sync(key), "now": state.clock.now()})


async def reset_state(state: MockState, request: Request) -> Response:
    state.book.reset()
    state.journal.clear()
    return JSONResponse({"reset": "all"})


async def get_key_state(state: MockState, request: Request) -> Response:
    return JSONResponse(_key_state(state, request.path_params["prefix"], state.clock.now()))


async def reset_key_state(state: MockState, request: Request) -> Response:
    prefix = request.path_params["prefix"]
    state.book.reset(prefix)
    return JSONResponse({"reset": prefix})


async def get_history(state: MockState, request: Request) -> Response:
    now = state.clock.now()
    sessions = state.book.history(request.query_params.get("key"), _limit(request))
    return JSONResponse({"sessions": [session.to_json(now) for session in sessions]})


async def list_keys(state: MockState, request: Request) -> Response:
    keys = state.keys
    body = {"keys": keys.describe(), "accept_any_key": keys.accept_any, "revoked_keys_work": keys.revoked_keys_work}
    return JSONResponse(body)


async def add_key(state: MockState, request: Request) -> Response:
    body = await _json_object(request)
    if set(body) == {"key"} and isinstance(body["key"], str):
        return JSONResponse({"prefix": state.keys.add(body["key"])}, status_code=201)
    if set(body) == {"legacy_prefix"} and isinstance(body["legacy_prefix"], str):
        return JSONResponse({"prefix": state.keys.add_legacy(body["legacy_prefix"])}, status_code=201)
    raise _invalid('send {"key": "sk-..."} or {"legacy_prefix": "sk-XXXXXX"}')


async def revoke_key(state: MockState, request: Request) -> Response:
    prefix = request.path_params["prefix"]
    try:
        state.keys.revoke(prefix)
    except DomainError as error:
        raise Problem(404, "Unknown key", str(error)) from None
    return JSONResponse({"prefix": prefix, "revoked": True})


async def get_scenario(state: MockState, request: Request) -> Response:
    return JSONResponse(_scenario(state))


async def set_scenario(state: MockState, request: Request) -> Response:
    body = await _json_object(request)
    name = body.get("name", "")
    if set(body) != {"name"} or not (name is None or (isinstance(name, str) and name.strip())):
        raise _invalid('the body must be {"name": "<scenario>"} or {"name": null}')
    state.scenario.name = None if name is None else name.strip()
    return JSONResponse(_scenario(state))


def _scenario(state: MockState) -> dict[str, object]:
    return {"name": state.scenario.name, "recording": state.config.record is not None}


async def get_clock(state: MockState, request: Request) -> Response:
    return JSONResponse(_clock(state))


async def set_clock(state: MockState, request: Request) -> Response:
    now = _number(await _json_object(request), "now")
    _controllable(state).set(now)
    return JSONResponse(_clock(state))


async def advance_clock(state: MockState, request: Request) -> Response:
    seconds = _number(await _json_object(request), "seconds")
    _controllable(state).advance(seconds)
    return JSONResponse(_clock(state))


def _controllable(state: MockState) -> Any:
    if not (hasattr(state.clock, "set") and hasattr(state.clock, "advance")):
        raise Problem(409, "Clock not controllable", "this mock was started with a clock that cannot be moved")
    return state.clock


async def list_faults(state: MockState, request: Request) -> Response:
    return JSONResponse({"faults": [fault.to_json() for fault in state.faults.list()]})


_FAULT_FIELDS = {"kind", "key", "count", "message", "seconds", "operation", "status", "body", "retries", "duration"}


async def arm_fault(state: MockState, request: Request) -> Response:
    body = await _json_object(request)
    unknown = set(body) - _FAULT_FIELDS
    if unknown:
        raise _invalid(f"unknown fields: {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_FAULT_FIELDS))}")
    kind = _fault_kind(body.get("kind"))
    options = {name: body.get(name) for name in ("key", "count", "message", "operation", "status", "body")}
    types = (("key", str), ("count", int), ("message", str), ("operation", str), ("status", int), ("body", str))
    for name, expected in types:
        if options[name] is not None and (not isinstance(options[name], expected) or isinstance(options[name], bool)):
            raise _invalid(f"'{name}' must be a {expected.__name__}")
    _known_target(state, options["key"], options["operation"])
    seconds = _number(body, "seconds") if "seconds" in body else 0.0
    duration = _number(body, "duration") if "duration" in body else None
    retries = body.get("retries", False)
    if not isinstance(retries, bool):
        raise _invalid("'retries' must be true or false")
    fault = state.faults.arm(kind, seconds=seconds, retries=retries, duration=duration, **options)
    return JSONResponse(fault.to_json(), status_code=201)


def _known_target(state: MockState, key: object, operation: object) -> None:
    """A fault for a key or an operation the mock does not know would never be used: refuse it."""
    if isinstance(key, str) and not state.keys.knows(key):
        known = ", ".join(state.keys.prefixes()) or "none"
        raise _invalid(
            f"no API key with the prefix {key_prefix(key)!r} is registered (known: {known}); "
            "arm a fault by a registered key's 9-character prefix, or without 'key' for every key"
        )
    operations = [op.operation_id for op in state.spec.operations]
    if isinstance(operation, str) and operation not in operations:
        raise _invalid(f"'operation' must be one of {', '.join(operations)}")


def _fault_kind(value: object) -> FaultKind:
    kinds = {kind.value: kind for kind in FaultKind}
    if not isinstance(value, str) or value not in kinds:
        raise _invalid(f"'kind' must be one of {', '.join(kinds)}")
    return kinds[value]


async def clear_faults(state: MockState, request: Request) -> Response:
    raw_kind = request.query_params.get("kind")
    kind = None if raw_kind is None else _fault_kind(raw_kind)
    return JSONResponse({"cleared": state.faults.clear(kind, request.query_params.get("key"))})


def _known_key(state: MockState, prefix: str) -> None:
    if not state.keys.knows(prefix):
        known = ", ".join(state.keys.prefixes()) or "none"
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


async def get_automation(state: MockState, request: Request) -> Response:
    prefix = request.path_params["prefix"]
    _known_key(state, prefix)
    return JSONResponse(_automation(state, prefix))


async def set_automation(state: MockState, request: Request) -> Response:
    prefix = request.path_params["prefix"]
    _known_key(state, prefix)
    body = await _json_object(request)
    enabled, duration = body.get("enabled"), body.get("duration")
    if not body or set(body) - {"enabled", "duration"}:
        raise _invalid('send {"enabled": true|false} and/or {"duration": 60-86400}')
    if enabled is not None and not isinstance(enabled, bool):
        raise _invalid("'enabled' must be true or false")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)):
        raise _invalid("'duration' must be an integer (seconds, 60-86400)")
    state.automation.change(prefix, enabled=enabled, duration=duration)
    return JSONResponse(_automation(state, prefix))


_REPLY_FIELDS = {"key", "content", "tool_calls", "finish_reason", "error", "break_after", "chunk_delay", "raw_body"}


async def list_replies(state: MockState, request: Request) -> Response:
    return JSONResponse({"replies": [reply.to_json() for reply in state.replies.listed()]})


async def queue_reply(state: MockState, request: Request) -> Response:
    body = await _json_object(request)
    unknown = set(body) - _REPLY_FIELDS
    if unknown:
        raise _invalid(f"unknown fields: {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_REPLY_FIELDS))}")
    key = _typed(body, "key", str)
    if key is not None and not state.keys.knows(key):
        raise _invalid(f"no API key with the prefix {key_prefix(key)!r} is registered; queue by a registered prefix")
    error = body.get("error")
    if error is not None and not (isinstance(error, dict) and set(error) <= {"status", "body"} and "status" in error):
        raise _invalid('\'error\' must be {"status": 400-599, "body": "<raw upstream body>"}')
    reply = QueuedReply(
        key=key,
        content=_typed(body, "content", str),
        tool_calls=_tool_calls(body.get("tool_calls")),
        finish_reason=_typed(body, "finish_reason", str),
        error_status=None if error is None else _typed(error, "status", int),
        error_body=None if error is None else _typed(error, "body", str),
        break_after=_typed(body, "break_after", int),
        chunk_delay=_number(body, "chunk_delay") if "chunk_delay" in body else 0.0,
        raw_body=_typed(body, "raw_body", str),
    )
    return JSONResponse(state.replies.push(reply).to_json(), status_code=201)


def _typed(body: dict[str, Any], name: str, expected: type) -> Any:
    value = body.get(name)
    if value is not None and (not isinstance(value, expected) or isinstance(value, bool)):
        raise _invalid(f"'{name}' must be a {expected.__name__}")
    return value


def _tool_calls(value: object) -> tuple[ToolCallReply, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(call, dict) for call in value):
        raise _invalid('\'tool_calls\' must be a non-empty list of {"name": ..., "arguments": {...} or "..."}')
    calls = []
    for call in value:
        name, arguments = call.get("name"), call.get("arguments", {})
        if not isinstance(name, str) or not name or set(call) - {"name", "arguments"}:
            raise _invalid("each tool call needs a 'name' (and may have 'arguments')")
        if not isinstance(arguments, dict | str):
            raise _invalid("a tool call's 'arguments' must be an object or a JSON text")
        calls.append(ToolCallReply(name, arguments if isinstance(arguments, str) else json.dumps(arguments)))
    return tuple(calls)


async def clear_replies(state: MockState, request: Request) -> Response:
    return JSONResponse({"cleared": state.replies.clear(request.query_params.get("key"))})


async def get_journal(state: MockState, request: Request) -> Response:
    entries = state.journal.entries(key=request.query_params.get("key"), limit=_limit(request))
    return JSONResponse({"entries": entries})


async def clear_journal(state: MockState, request: Request) -> Response:
    return JSONResponse({"cleared": state.journal.clear()})


ROUTES: list[tuple[str, dict[str, AdminEndpoint]]] = [
    ("/state", {"GET": get_state, "DELETE": reset_state}),
    ("/state/{prefix}", {"GET": get_key_state, "DELETE": reset_key_state}),
    ("/history", {"GET": get_history}),
    ("/sync", {"POST": run_sync}),
    ("/keys", {"GET": list_keys, "POST": add_key}),
    ("/keys/{prefix}/revoke", {"POST": revoke_key}),
    ("/keys/{prefix}/automation", {"GET": get_automation, "PUT": set_automation}),
    ("/replies", {"GET": list_replies, "POST": queue_reply, "DELETE": clear_replies}),
    ("/clock", {"GET": get_clock, "PUT": set_clock}),
    ("/clock/advance", {"POST": advance_clock}),
    ("/faults", {"GET": list_faults, "POST": arm_fault, "DELETE": clear_faults}),
    ("/journal", {"GET": get_journal, "DELETE": clear_journal}),
    ("/recording/scenario", {"GET": get_scenario, "PUT": set_scenario}),
]


def admin_routes(state: MockState) -> list[Route]:
    """One Route per path (so 405 answers carry every allowed method), dispatching on the method."""
    return [_route(state, path, endpoints) for path, endpoints in ROUTES]


def _route(state: MockState, path: str, endpoints: dict[str, AdminEndpoint]) -> Route:
    async def dispatch(request: Request) -> Response:
        try:
            _authorize(state, request)
            return await endpoints[request.method](state, request)
        except Problem as problem:
            return problem.response()
        except DomainError as error:  # a value the domain refuses (a time out of range, a malformed key, ...)
            return _invalid(str(error)).response()
        except StoreError as error:
            return Problem(503, "Store unavailable", f"{error}; the mock answers again once the store does").response()

    return Route(PREFIX + path, dispatch, methods=list(endpoints))


def _authorize(state: MockState, request: Request) -> None:
    token = state.config.admin_token
    if token is None:
        return
    given = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Problem(401, "Admin token required", f"send the admin token in the {TOKEN_HEADER} header")
