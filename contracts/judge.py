"""How a replayed answer is judged against the answer the mock gave in the application's tests.

Status and media type must be the same, and the body must be what the spec documents for that status
(`answers.body_errors`; a stream event by event, `sse.check_events`). Then the parts the gateway
decides are compared exactly (messages, statuses, success flags, the `model` echo, error texts), with
keys as their aliases (`api_key_prefix` maps to the key used) and session ids and hashes renamed S1,
S2, ... by identity within the sequence (`diff.Shapes`); the parts it does not decide are compared by
shape only: what a provider generates (a chat's text, ids, times, token counts, vectors) and the
deployment's model list. One answer of the gateway's is its timing's: a ping after a session's end
says `expired` until the gateway's sync pass (every 60 s) retires the session, then `no_session`
(observed-v1.14.0.md), so either is accepted where the other was recorded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from contracts.answers import AnswerError, body_errors
from contracts.api import CHAT, EMBEDDINGS, LIST_MODELS, PING
from contracts.diff import Shapes
from contracts.sse import DONE_DATA, check_events, read_events
from openapi import hide_keys, media_type_key

# What a provider's relayed 200 body keeps for exact comparison; its other members are its own.
RELAYED = {CHAT.operation_id: ("object", "model"), EMBEDDINGS.operation_id: ("object", "model")}
DEPLOYMENT = {LIST_MODELS.operation_id}  # the models a gateway lists are its deployment's, not its behaviour
ENDED = ("expired", "no_session")  # a ping after the session's end: which one depends on the sync pass's timing


@dataclass(frozen=True)
class Judged:
    """What a replayed answer is compared by, on each side: status, media type and the decided part."""

    status: int
    media_type: str
    decided: Any  # None: the body is judged by its shape only

    def __str__(self) -> str:
        shown = "(shape only)" if self.decided is None else json.dumps(self.decided, separators=(",", ":"))
        return f"{self.status} {self.media_type or '(no content type)'} {shown[:400]}"


def recorded(operation_id: str | None, answer: dict[str, Any], shapes: Shapes) -> Judged:
    """The recorded answer as it is compared (its keys are aliases already)."""
    content = answer["body"] if "body" in answer else answer.get("text", "")
    return _judged(operation_id, answer["status"], answer.get("content_type", ""), content, shapes)


def replayed(
    operation_id: str | None, response: requests.Response, keys: Sequence[str], shapes: Shapes
) -> tuple[Judged, list[str]]:
    """The replayed answer as it is compared, and what breaks the spec in it."""
    text = hide_keys(response.text, keys)
    media_type = response.headers.get("content-type", "")
    try:
        content: Any = json.loads(text)
    except ValueError:
        content = text
    problems = _spec_problems(operation_id, response, content)
    return _judged(operation_id, response.status_code, media_type, content, shapes), problems


def _judged(operation_id: str | None, status: int, media_type: str, content: Any, shapes: Shapes) -> Judged:
    kind = media_type_key(media_type)
    if kind == "text/event-stream" and isinstance(content, str):
        return Judged(status, kind, _stream(content, shapes))
    value = shapes.of(content)
    if status == 200 and operation_id in DEPLOYMENT:
        return Judged(status, kind, None)
    if status == 200 and operation_id == PING.operation_id and isinstance(value, dict) and value.get("status") in ENDED:
        return Judged(status, kind, {"status": " or ".join(ENDED), "success": value.get("success")})
    if status == 200 and operation_id in RELAYED and isinstance(value, dict):
        return Judged(status, kind, {name: value.get(name) for name in RELAYED[operation_id]})
    return Judged(status, kind, value)


def _stream(text: str, shapes: Shapes) -> dict[str, Any]:
    """A stream's decided part: how it ends (`[DONE]` or an error frame) and the models its chunks name."""
    events = read_events(text, DONE_DATA).events
    last = events[-1] if events else None
    ending = "done" if last is not None and last.done else "error" if last is not None and last.error else "none"
    models = sorted({str(event.value.get("model")) for event in events if event.parsed and not event.error})
    return {"ends": ending, "models": shapes.of(models)}


def _spec_problems(operation_id: str | None, response: requests.Response, content: Any) -> list[str]:
    if operation_id is None:
        return []
    if media_type_key(response.headers.get("content-type", "")) == "text/event-stream":
        try:
            check_events(response.text)
        except AnswerError as error:
            return [str(error)]
        return []
    if isinstance(content, str):
        return [f"the body is not JSON: {content[:200]!r}"]
    return [str(error) for error in body_errors(operation_id, response.status_code, json.loads(response.text))]
