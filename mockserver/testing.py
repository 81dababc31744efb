"""The mock in a user's own tests: what the `morpheus_mock` fixtures hand out, and the server behind them.

One server per test session listens on a free loopback port; each test gets a new mock app behind it
(`Switchboard`), so every test starts from a clean state: its own keys, sessions, faults, clock and
journal. `MorpheusMock` is the handle a test uses: URLs and keys for the application under test, and
the controls (faults, clock, state, journal) that the admin API offers over HTTP, called directly.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any, Unpack

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from mockserver.config import Config, SelfCheck, fixture_settings
from mockserver.domain import (
    SYNC_INTERVAL,
    FaultKind,
    FaultOptions,
    OffsetClock,
    QueuedReply,
    ToolCallReply,
    immediate,
    key_prefix,
)
from mockserver.recording import Track
from mockserver.serving import ServerDidNotStart, ThreadedServer, http_protocol
from mockserver.web.app import create_app
from mockserver.web.state import MockState
from openapi import Spec

API_PREFIX = "/api/v1"


class MockTestingError(Exception):
    """The test mock cannot do what a test asked (the server did not start, a fault kind is unknown, ...)."""


def make_key(number: int) -> str:
    """The `number`-th key the fixtures hand out: well formed, stable from run to run, distinct prefixes."""
    return f"sk-Mock{number:02d}." + hashlib.sha256(f"morpheus-mock-key-{number}".encode()).hexdigest()


DEFAULT_KEY = make_key(0)


_FIXTURE = {setting.field: setting.default for setting in fixture_settings()}  # the table's, written once


@dataclass(frozen=True)
class MockOptions:
    """How a test's mock is configured: plugin options and ini values, overridden by a test's marker. Its fields
    are the `Config` fields the fixture takes (`config.fixture_settings`), with the fixture's defaults."""

    keys: tuple[str, ...] = _FIXTURE["keys"]
    models_file: Path | None = _FIXTURE["models_file"]
    bids_file: Path | None = _FIXTURE["bids_file"]
    seed: int | None = _FIXTURE["seed"]
    accept_any_key: bool = _FIXTURE["accept_any_key"]
    automation: bool = _FIXTURE[
        "automation"
    ]  # the system-wide flag (`--automation`): off, chat needing a new session is a 403
    retry_pause: bool = _FIXTURE["retry_pause"]  # the gateway's 1-3 s pauses between its upstream attempts

    def config(self) -> Config:
        """The mock's Config: the admin API on, responses checked against the spec (a break fails the test)."""
        given = {each.name: getattr(self, each.name) for each in fields(self)}
        return Config(**{**given, "keys": self.keys or (DEFAULT_KEY,)}, admin=True, self_check=SelfCheck.RAISE)


class Switchboard:
    """An ASGI app that passes every request to the app of the test that runs now."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            raise MockTestingError("a request reached the test mock between two tests")
        await self.app(scope, receive, send)


class ServedMock(ThreadedServer):
    """The one server of a test session: a Switchboard served in a thread on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.switchboard = Switchboard()
        super().__init__(self.switchboard, lifespan="off", http=http_protocol())

    def start(self, timeout: float = 10.0) -> ServedMock:
        """Start serving; MockTestingError when the server is not up within `timeout` seconds."""
        try:
            super().start(timeout)
        except ServerDidNotStart:
            self.stop()
            raise MockTestingError("the Morpheus mock server did not start") from None
        return self


class MockClock:
    """The mock's clock: what expiry (R6) and faults with a duration go by."""

    def __init__(self, state: MockState, note: Callable[..., None] | None = None) -> None:
        self._state = state
        self._note = note or _unrecorded  # a clock move is a control the test's recording notes

    def now(self) -> float:
        return self._state.clock.now()

    def advance(self, seconds: float) -> float:
        """Move time forward; returns the new time. Sessions past their end are expired from now on."""
        self._note("advance_clock", {"seconds": seconds})
        return immediate(self._state.clock.advance(seconds))

    def set(self, now: float) -> float:
        """Jump to `now` (Unix seconds)."""
        self._note("set_clock", {"now": now})
        return immediate(self._state.clock.set(now))


class ArmedFault:
    """A fault armed for a test; as a context manager it is cleared when the block ends."""

    def __init__(self, mock: MorpheusMock, kind: FaultKind, key: str | None, armed: dict[str, object]) -> None:
        self._mock, self.kind, self.key, self.armed = mock, kind, key, armed

    def __repr__(self) -> str:
        return f"ArmedFault({self.kind.value!r}, key={self.key!r})"

    def clear(self) -> int:
        """Disarm the faults of this kind for this key (or for every key); returns how many there were."""
        return self._mock.clear_faults(self.kind.value, self.key)

    def __enter__(self) -> ArmedFault:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.clear()


class MorpheusMock:
    """One test's mock gateway: `url`, `api_base`, `key`, and the controls of the admin API."""

    def __init__(self, app: Starlette, url: str) -> None:
        self.app = app  # an ASGI app: httpx.ASGITransport(app=mock.app) reaches it in-process
        self.url = url
        self._state: MockState = app.state.mock
        self._keys: list[str] = list(self._state.config.keys)
        self.track: Track | None = None  # this test's recorded sequence (`--morpheus-record`): controls are noted
        self._note: Callable[..., None] = _unrecorded

    def record(self, track: Track) -> None:
        """Record this test's calls and controls in `track` (its keys are the test's keys, in order)."""
        self.track, self._note = track, track.control
        track.keys[:] = self._keys
        self._keys = track.keys
        if not self._state.config.automation:  # the marker's automation=False: as every key's setting off
            for key in self._keys:
                track.control("set_automation", {"enabled": False}, prefix=key_prefix(key))

    def __repr__(self) -> str:
        return f"MorpheusMock({self.url!r}, keys={len(self._keys)})"

    @property
    def api_base(self) -> str:
        """The OpenAI-style base URL (…/api/v1), for `OpenAI(base_url=mock.api_base, api_key=mock.key)`."""
        return self.url + API_PREFIX

    @property
    def key(self) -> str:
        """The first registered key."""
        return self._keys[0]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def new_key(self) -> str:
        """Register one more key for this test and return it."""
        key = make_key(len(self._keys))
        immediate(self._state.keys.add(key))
        self._keys.append(key)
        return key

    def headers(self, key: str | None = None) -> dict[str, str]:
        """`Authorization: Bearer <key>` (default: `key`)."""
        return {"Authorization": f"Bearer {key or self.key}"}

    # faults
    def fault(self, kind: str, *, key: str | None = None, **options: Unpack[FaultOptions]) -> ArmedFault:
        """Arm a fault (the kinds and options of `POST /__admin/faults`); `key` is a key or its prefix.

        `retries=True` with `count=1` fails exactly one SDK call, its retries included.
        """
        fault_kind = _fault_kind(kind)
        prefix = None if key is None else key_prefix(key)
        self._note("arm_fault", {"kind": fault_kind.value, **({} if prefix is None else {"key": prefix}), **options})
        armed = immediate(self._state.faults.arm(fault_kind, key=prefix, **options))
        return ArmedFault(self, fault_kind, prefix, armed.to_json())

    def clear_faults(self, kind: str | None = None, key: str | None = None) -> int:
        """Disarm faults (of a kind, of a key; default all) and return how many there were."""
        given = {"kind": kind, "key": None if key is None else key_prefix(key)}
        self._note("clear_faults", query={name: value for name, value in given.items() if value is not None})
        kind_of = None if kind is None else _fault_kind(kind)
        return immediate(self._state.faults.clear(kind_of, None if key is None else key_prefix(key)))

    @property
    def faults(self) -> list[dict[str, object]]:
        """The armed faults, as `GET /__admin/faults` lists them."""
        return [fault.to_json() for fault in self._state.faults.list()]

    # the simulated provider and automation (chat completions and embeddings)
    def queue_reply(
        self,
        content: str | None = None,
        *,
        key: str | None = None,
        tool_calls: Sequence[tuple[str, str]] = (),
        finish_reason: str | None = None,
        error_status: int | None = None,
        error_body: str | None = None,
        break_after: int | None = None,
        chunk_delay: float = 0.0,
        raw_body: str | None = None,
    ) -> dict[str, object]:
        """Tell the provider what to answer to its next chat completion call (of `key`, or of any key).

        `tool_calls` are (name, JSON arguments) pairs; `error_status` makes it refuse instead; a stream
        breaks after `break_after` chunks and waits `chunk_delay` seconds before each; `raw_body` is a
        200 with that text verbatim (unusable unless truthy JSON). Each reply is one provider answer:
        the gateway's retry of a failed non-stream chat takes the next one.
        """
        reply = QueuedReply(
            key=None if key is None else key_prefix(key),
            content=content,
            tool_calls=tuple(ToolCallReply(name, arguments) for name, arguments in tool_calls),
            finish_reason=finish_reason,
            error_status=error_status,
            error_body=error_body,
            break_after=break_after,
            chunk_delay=chunk_delay,
            raw_body=raw_body,
        )
        self._note("queue_reply", _reply_body(reply))
        return immediate(self._state.replies.push(reply)).to_json()

    @property
    def replies(self) -> list[dict[str, object]]:
        """The replies still queued, in the order they will be used."""
        return [reply.to_json() for reply in self._state.replies.listed()]

    def automation(
        self, key: str | None = None, *, enabled: bool | None = None, duration: int | None = None
    ) -> dict[str, object]:
        """Change (or just read) a key's automation setting: off, chat needing a new session answers 403."""
        changes = {name: value for name, value in (("enabled", enabled), ("duration", duration)) if value is not None}
        if changes:
            self._note("set_automation", changes, prefix=key_prefix(key or self.key))
        setting = immediate(
            self._state.automation.change(key_prefix(key or self.key), enabled=enabled, duration=duration)
        )
        system = self._state.automation.system
        return {"enabled": setting.enabled, "duration": setting.duration, "system": system}

    # time
    @property
    def clock(self) -> MockClock:
        return MockClock(self._state, self._note)

    # state
    def session(self, key: str | None = None) -> dict[str, Any] | None:
        """The key's active session as `GET /__admin/state/{prefix}` shows it, or None."""
        active = immediate(self._state.book.active(key_prefix(key or self.key)))
        return None if active is None else active.to_json(self._state.clock.now())

    def history(self, key: str | None = None) -> list[dict[str, Any]]:
        """Ended sessions, newest first (of one key, or of all)."""
        now = self._state.clock.now()
        prefix = None if key is None else key_prefix(key)
        return [session.to_json(now) for session in immediate(self._state.book.history(prefix, None))]

    def journal(self, key: str | None = None) -> list[dict[str, object]]:
        """The requests this test's mock answered, newest first (keys by prefix only)."""
        return immediate(self._state.journal.entries(key=None if key is None else key_prefix(key)))

    def reset(self) -> None:
        """Forget every session, the history and the journal (keys, faults and the clock stay)."""
        self._note("reset_state")
        immediate(self._state.book.reset())
        immediate(self._state.journal.clear())


def _unrecorded(*control: object, **options: object) -> None:
    """What noting a control does when the run does not record."""


def _fault_kind(kind: str) -> FaultKind:
    try:
        return FaultKind(kind)
    except ValueError:
        kinds = ", ".join(kind.value for kind in FaultKind)
        raise MockTestingError(f"unknown fault kind {kind!r}; the kinds are: {kinds}") from None


def _reply_body(reply: QueuedReply) -> dict[str, Any]:
    """A queued reply as the admin API takes it (`POST /__admin/replies`)."""
    body: dict[str, Any] = {
        "key": reply.key,
        "content": reply.content,
        "finish_reason": reply.finish_reason,
        "break_after": reply.break_after,
        "raw_body": reply.raw_body,
    }
    if reply.tool_calls:
        body["tool_calls"] = [{"name": call.name, "arguments": call.arguments} for call in reply.tool_calls]
    if reply.error_status is not None:
        body["error"] = {"status": reply.error_status, "body": reply.error_body}
    if reply.chunk_delay:
        body["chunk_delay"] = reply.chunk_delay
    return {name: value for name, value in body.items() if value is not None}


def build_mock(options: MockOptions, url: str, spec: Spec, now: Callable[[], float] = time.time) -> MorpheusMock:
    """A fresh mock app for one test, reached at `url`.

    Its clock starts one second after one of the gateway's 60 s sync passes (up to a minute behind the wall
    clock), so whether a pass falls between two steps of a test depends on the test's own clock moves, never on
    the minute it runs in: an expired session reads `expired` until the next pass, then is gone.
    """
    wall = now()
    clock = OffsetClock(math.floor(wall / SYNC_INTERVAL) * SYNC_INTERVAL + 1 - wall, source=now)
    return MorpheusMock(create_app(options.config(), spec=spec, clock=clock), url)
