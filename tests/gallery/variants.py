"""Broken gateways: each is the real mock with one small, named override.

A variant takes the real mock app and returns the broken one. Behaviour bugs swap the class of one
domain object for a subclass that overrides one method; shape bugs rewrite one kind of response.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.domain import CloseKind, CloseOutcome, KeyRegistry, PingKind, PingOutcome, Session, SessionBook
from mockserver.domain.book import Armed


@dataclass(frozen=True)
class Variant:
    name: str
    rule: str  # the rule or contract part it breaks
    breaks: str  # what a real gateway would get wrong
    apply: Callable[[Starlette], ASGIApp]


def _swap(attribute: str, cls: type) -> Callable[[Starlette], ASGIApp]:
    def apply(app: Starlette) -> ASGIApp:
        getattr(app.state.mock, attribute).__class__ = cls
        return app

    return apply


class ReuseOpensNew(SessionBook):
    def create_model_session(self, key: str, requested: str, resolved: str, duration: int, **faults: Any) -> Session:
        self.store.reset(key)  # forgets the key's session, so a same-model create opens another one
        return super().create_model_session(key, requested, resolved, duration, **faults)


class SwitchKeepsOld(SessionBook):
    def create_model_session(self, key: str, requested: str, resolved: str, duration: int, **faults: Any) -> Session:
        current = self.store.active(key)
        if current is not None and not current.is_expired(self.clock.now()):
            return current  # any model reuses the current session
        return super().create_model_session(key, requested, resolved, duration, **faults)


class CloseKeepsSession(SessionBook):
    def close(self, key: str, *, fail: bool | Armed[bool] = False) -> CloseOutcome:
        current = self.store.active(key)
        if current is None:
            return super().close(key, fail=fail)
        return CloseOutcome(CloseKind.CLOSED, current.session_id)  # reports success, keeps the session


class DeadPingKeepsSession(SessionBook):
    def ping(self, key: str, *, dead: Any = None, error: Any = None) -> PingOutcome:
        outcome = super().ping(key, error=error)
        reason = dead() if callable(dead) and outcome.kind is PingKind.ALIVE else None
        return outcome if reason is None else PingOutcome(PingKind.DEAD, outcome.session_id, reason)


class MissingKeyAccepted(KeyRegistry):
    def authenticate(self, header_value: str | None) -> str:
        if not header_value:
            return self.prefixes()[0]  # no header: served as the first key
        return super().authenticate(header_value)


def rewrite_json(path_suffix: str, change: Callable[[Any], Any]) -> Callable[[Starlette], ASGIApp]:
    """A variant that changes the JSON body of every 200 answer on paths ending in `path_suffix`."""

    def apply(app: Starlette) -> ASGIApp:
        async def broken(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not scope["path"].endswith(path_suffix):
                await app(scope, receive, send)
                return
            start: dict[str, Message] = {}

            async def send_changed(message: Message) -> None:
                if message["type"] == "http.response.start":
                    start["message"] = message
                    return
                original = start["message"]
                body = message.get("body", b"")
                if original["status"] == 200:
                    body = json.dumps(change(json.loads(body))).encode()
                headers = [(k, v) for k, v in original["headers"] if k.lower() != b"content-length"]
                await send({**original, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                await send({**message, "body": body})

            await app(scope, receive, send_changed)

        return broken

    return apply


def _without(field: str) -> Callable[[Any], Any]:
    return lambda body: {name: value for name, value in body.items() if name != field}


VARIANTS = {
    variant.name: variant
    for variant in (
        Variant(
            "reuse-opens-new",
            "R1",
            "a second modelsession on the same model opens a new session",
            _swap("book", ReuseOpensNew),
        ),
        Variant(
            "switch-keeps-old",
            "R2",
            "modelsession on another model keeps the old session",
            _swap("book", SwitchKeepsOld),
        ),
        Variant(
            "close-keeps-session",
            "R4",
            "closesession reports success but the session stays",
            _swap("book", CloseKeepsSession),
        ),
        Variant(
            "dead-ping-keeps-session",
            "R5",
            "a dead ping does not close the session",
            _swap("book", DeadPingKeepsSession),
        ),
        Variant(
            "no-api-key-prefix",
            "body",
            "modelsession's 200 body lacks api_key_prefix",
            rewrite_json("/modelsession", _without("api_key_prefix")),
        ),
        Variant("missing-key-accepted", "auth", "a request without a key is served", _swap("keys", MissingKeyAccepted)),
    )
}
