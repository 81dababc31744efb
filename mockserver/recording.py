"""Recording an application's contract: every gateway call its tests make to the mock, with the mock's
answer, in order, and the mock-only controls used between them (faults, clock, automation, replies,
resets), written as one contract recording (`openapi/recording.schema.json`) that `morpheus-contract
verify` replays against a gateway.

Keys never reach the file: each sequence names its keys `key1`, `key2`, ... (the fixture: the test's
keys in order; a served mock: in order of first use), in the Authorization header, in bodies
(`api_key_prefix`) and in the controls; a key the mock does not know keeps only its prefix.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.domain import key_prefix
from mockserver.web.middleware import KEY_SHOWN, ShownKey
from mockserver.web.pipeline import IDEMPOTENCY_HEADER, RETRY_COUNT_HEADER
from mockserver.web.state import Scenario
from openapi import ADMIN_SPEC_PATH, Operation, hide_keys, load_spec, new_recording, write_recording

API_PREFIX = "/api/"  # the gateway's API; other paths (pages, /docs) are not the application's calls
ADMIN_PREFIX = "/__admin"
SCENARIO_HEADER = b"x-morpheus-scenario"  # a served mock groups the requests that carry it under its value
RETRY_HEADERS = (IDEMPOTENCY_HEADER, RETRY_COUNT_HEADER)  # how the mock tells an SDK's retries of one call
NOT_CONTROLS = ("set_scenario",)  # an admin call that names the recording's sequences, not the gateway's state
NO_KEY = "no key"  # a served mock's sequence of requests with no key the mock knows and no scenario


def _admin_operations() -> dict[str, Operation]:
    return {operation.operation_id: operation for operation in load_spec(ADMIN_SPEC_PATH).operations}


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "([^/]+)", re.escape(path)) + "$")


@dataclass
class Track:
    """One recorded sequence: its name, its keys (alias `key<n>` = the n-th) and its steps."""

    name: str
    keys: list[str] = field(default_factory=list)  # full keys; a served mock may know one by its prefix first
    steps: list[dict[str, Any]] = field(default_factory=list)

    def learn(self, key: str) -> None:
        """Give a key (or a key prefix) the next alias; a full key takes over the alias of its prefix."""
        prefix = key_prefix(key)
        if prefix in self.keys:  # known by its prefix until now
            self.keys[self.keys.index(prefix)] = key
        elif all(key_prefix(known) != prefix for known in self.keys):
            self.keys.append(key)

    def hide(self, text: str) -> str:
        """`text` with the sequence's keys as their aliases (`openapi.hide_keys`)."""
        return hide_keys(text, self.keys)

    def control(
        self,
        operation_id: str,
        body: dict[str, Any] | None = None,
        *,
        prefix: str | None = None,
        query: dict[str, str] | None = None,
    ) -> None:
        """Note a mock-only control as the admin API call that does it (`prefix`: the key in its path)."""
        operation = _admin_operations()[operation_id]
        path = operation.path.replace("{prefix}", self.hide(prefix)) if prefix else operation.path
        control: dict[str, Any] = {"operation": operation_id, "method": operation.method, "path": path}
        if query:
            control["query"] = self.hide(urlencode(query))
        if body is not None:
            control["body"] = json.loads(self.hide(json.dumps(body)))
        self.steps.append({"control": control})

    def document(self) -> dict[str, Any]:
        return {"name": self.name, "keys": len(self.keys), "steps": self.steps}


class Recorder:
    """The sequences of one recording, written to `path` as one file."""

    def __init__(self, path: Path, recorded_by: str) -> None:
        self.path, self.recorded_by = path, recorded_by
        self.tracks: dict[str, Track] = {}
        self.lock = threading.Lock()

    def track(self, name: str, keys: list[str] | None = None) -> Track:
        """The sequence called `name` (a new one shares `keys`, the list the test's mock adds keys to)."""
        with self.lock:
            if name not in self.tracks:
                self.tracks[name] = Track(name, keys if keys is not None else [])
            return self.tracks[name]

    def write(self) -> None:
        with self.lock:
            sequences = [track.document() for track in self.tracks.values() if track.steps]
            write_recording(self.path, new_recording(self.recorded_by, sequences))


@dataclass
class _Exchange:
    """One request and its answer as they pass through."""

    body: bytearray = field(default_factory=bytearray)
    status: int = 0
    content_type: str = ""
    answer: bytearray = field(default_factory=bytearray)


Chooser = Callable[[Scope, bytes], "Track | None"]


class RecordingApp:
    """ASGI: passes every request to `app`, and notes the gateway calls (and the admin API's changes) in
    the track `choose` picks for the request (None: not recorded)."""

    def __init__(self, app: ASGIApp, choose: Chooser, after: Callable[[], None] = lambda: None) -> None:
        self.app, self.choose, self.after = app, choose, after
        changes = [
            op for op in _admin_operations().values() if op.method != "GET" and op.operation_id not in NOT_CONTROLS
        ]
        self.admin = [(op, _template(op.path)) for op in changes]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # `state`, `routes`, ... of the app behind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith((API_PREFIX, ADMIN_PREFIX)):
            await self.app(scope, receive, send)
            return
        exchange = _Exchange()

        async def receiving() -> Message:
            message = await receive()
            exchange.body += message.get("body", b"")  # http.request; an http.disconnect has none
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.content_type = _header(message.get("headers", []), b"content-type")
            else:
                exchange.answer += message.get("body", b"")
            await send(message)

        await self.app(scope, receiving, sending)
        track = self.choose(scope, bytes(exchange.body))
        if track is not None and self._note(track, scope, exchange):
            self.after()

    def _note(self, track: Track, scope: Scope, exchange: _Exchange) -> bool:
        path, method = scope["path"], scope["method"]
        if path.startswith(API_PREFIX):
            track.steps.append(_call(track, scope, exchange))
            return True
        for operation, pattern in self.admin:
            match = pattern.match(path)
            if match and operation.method == method and 200 <= exchange.status < 300:
                body = _json(bytes(exchange.body))
                control: dict[str, Any] = {
                    "operation": operation.operation_id,
                    "method": method,
                    "path": track.hide(path),
                }
                if scope.get("query_string"):
                    control["query"] = track.hide(scope["query_string"].decode("latin-1"))
                if isinstance(body, dict):
                    control["body"] = json.loads(track.hide(json.dumps(body)))
                track.steps.append({"control": control})
                return True
        return False


def _call(track: Track, scope: Scope, exchange: _Exchange) -> dict[str, Any]:
    headers = scope["headers"]
    authorization = _header(headers, b"authorization") or None
    request: dict[str, Any] = {"method": scope["method"], "path": scope["path"]}
    if scope.get("query_string"):
        request["query"] = track.hide(scope["query_string"].decode("latin-1"))
    request["authorization"] = None if authorization is None else track.hide(authorization)
    content_type = _header(headers, b"content-type")
    if content_type:
        request["content_type"] = content_type
    retry = {name.decode(): _header(headers, name) for name in RETRY_HEADERS if _header(headers, name)}
    if retry:
        request["headers"] = retry
    request.update(_content(track, bytes(exchange.body)))
    answer: dict[str, Any] = {"status": exchange.status, "content_type": exchange.content_type}
    answer.update(_content(track, bytes(exchange.answer)))
    operation = _gateway_operation(scope["method"], scope["path"])
    return {"operation": operation, "request": request, "answer": answer}


def _gateway_operation(method: str, path: str) -> str | None:
    for operation in load_spec().operations:
        if operation.method == method and operation.path == path:
            return operation.operation_id
    return None


def _content(track: Track, raw: bytes) -> dict[str, Any]:
    """`{"body": JSON}` when the bytes are JSON, else `{"text": ...}` (nothing when empty); keys hidden."""
    if not raw:
        return {}
    text = track.hide(raw.decode("utf-8", "replace"))
    value = _json(text.encode())
    return {"text": text} if value is _NOT_JSON else {"body": value}


_NOT_JSON = object()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def _header(headers: Any, name: bytes) -> str:
    for header, value in headers:
        if header.lower() == name:
            return str(value.decode("latin-1"))
    return ""


class ServedRecording:
    """A served mock's recording (`--record FILE`): sequences by scenario (the `X-Morpheus-Scenario`
    header) or else by key (`key1`, `key2`, ... in order of first use); the file is rewritten after each
    recorded request, so it is whole whenever the mock stops. An admin change that names no key and no
    scenario (a global fault, a clock move) is noted in every sequence, those begun and those to come."""

    def __init__(self, path: Path) -> None:
        self.recorder = Recorder(path, "morpheus-mock --record")
        self.by_prefix: dict[str, str] = {}  # key prefix -> the name of its sequence
        self.everywhere = Track("(every sequence)")
        self.globals: list[dict[str, Any]] = []
        self.scenario = Scenario()  # the app's: set through the admin API

    def wrap(self, app: Starlette) -> RecordingApp:
        self.recorder.write()
        self.scenario = app.state.mock.scenario
        return RecordingApp(app, self.choose, self.flush)

    def choose(self, scope: Scope, body: bytes) -> Track:
        shown: ShownKey | None = scope.get(KEY_SHOWN)  # the mock's reading of the Authorization header
        named = (shown.whole if shown is not None else None) or _named_prefix(scope, body)
        scenario = _header(scope["headers"], SCENARIO_HEADER).strip() or self.scenario.name
        if scenario:
            track = self._track(scenario)
        elif named is not None:
            prefix = key_prefix(named)
            track = self._track(self.by_prefix.setdefault(prefix, f"key{len(self.by_prefix) + 1}"))
        elif scope["path"].startswith(ADMIN_PREFIX):
            return self.everywhere
        else:
            track = self._track(NO_KEY)
        if named is not None:
            track.learn(named)
        return track

    def flush(self) -> None:
        """Hand the global changes to every sequence, then write the file."""
        for step in self.everywhere.steps:
            self.globals.append(step)
            for track in self.recorder.tracks.values():
                track.steps.append(step)
        self.everywhere.steps.clear()
        self.recorder.write()

    def _track(self, name: str) -> Track:
        fresh = name not in self.recorder.tracks
        track = self.recorder.track(name)
        if fresh:
            track.steps.extend(self.globals)
        return track


def _named_prefix(scope: Scope, body: bytes) -> str | None:
    """The key prefix an admin call is about: in its path, its query's `key` or its body's `key`."""
    if not scope["path"].startswith(ADMIN_PREFIX):
        return None
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    value = _json(body)
    named = [*re.findall(r"sk-[A-Za-z0-9]{6}", scope["path"]), query.get("key")]
    named.append(value.get("key") if isinstance(value, dict) else None)
    return next((name for name in named if isinstance(name, str) and name.startswith("sk-")), None)
