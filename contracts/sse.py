"""Server-sent events as the gateway streams a chat: `data: <json>` frames, then `data: [DONE]`.

`read_events` splits a whole `text/event-stream` body into its events, keeping what is not an SSE event
(a raw `{"error": ...}` the proxy-router may write after the stream began) as a problem to report, not
something to guess at. `check_events` judges them against the spec: each frame's JSON against the
`contentSchema` of the event's `data`, `[DONE]` (its `x-sse-done`) or one error frame last and nothing
after. No HTTP and no pytest here: the Schemathesis check of generated cases uses it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from contracts.answers import VALIDATORS, AnswerError
from contracts.api import CHAT
from openapi import BodyError


@dataclass(frozen=True)
class Event:
    """One event: the joined `data:` lines; its JSON when it is JSON (`parsed`); `done`: the end marker."""

    data: str
    value: Any = None
    parsed: bool = False
    done: bool = False

    @property
    def error(self) -> bool:
        """An error frame: a JSON object with an `error` member (what the OpenAI SDK raises APIError for)."""
        return self.parsed and isinstance(self.value, dict) and "error" in self.value


@dataclass(frozen=True)
class Events:
    events: tuple[Event, ...]
    problems: tuple[str, ...] = field(default=())  # text that is not an SSE event, or an event without data

    @property
    def chunks(self) -> tuple[Event, ...]:
        return tuple(event for event in self.events if not event.done and not event.error)


def read_events(body: str, done: str) -> Events:
    """Split a `text/event-stream` body into its events (blank-line separated, `data:` lines joined);
    `done` is the data of the stream's end marker (the spec's `x-sse-done`, `[DONE]`)."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    events: list[Event] = []
    problems: list[str] = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
        others = [line for line in lines if not line.startswith(("data:", "event:", "id:", "retry:"))]
        if others:
            problems.append(f"not an SSE field: {others[0][:120]!r}")
        if data:
            events.append(_event("\n".join(data), done))
        elif not others:
            problems.append(f"an event without data: {block[:120]!r}")
    if text.strip() and not text.endswith("\n\n"):
        problems.append(f"the stream ends inside an event: {text[-120:]!r}")
    return Events(tuple(events), tuple(problems))


def _event(data: str, done: str) -> Event:
    if data == done:
        return Event(data, done=True)
    try:
        return Event(data, json.loads(data), parsed=True)
    except ValueError:
        return Event(data)


_STREAM = VALIDATORS.stream_schema(CHAT.operation_id, 200)  # the contentSchema of an event's data, x-sse-done
FRAME_SCHEMA, DONE_DATA = _STREAM.frame_pointer, _STREAM.done


def check_events(text: str, ends: str = "either") -> Events:
    """A `text/event-stream` body against the spec; `ends`: "done" (a success: `[DONE]` last), "error"
    (a failure: one error frame last, no `[DONE]`) or "either". Returns the events."""
    events = read_events(text, DONE_DATA)
    if events.problems:
        raise AnswerError(f"{CHAT.label} streamed something that is not server-sent events: {events.problems[0]}")
    for number, event in enumerate(events.events, start=1):
        _check_event(number, event, last=number == len(events.events))
    last = events.events[-1] if events.events else None
    done, error = last is not None and last.done, last is not None and last.error
    if ends == "done" and not done:
        raise AnswerError(f"{CHAT.label}: a successful stream must end with `data: {DONE_DATA}`, not {_shown(last)}")
    if ends == "error" and not error:
        raise AnswerError(f"{CHAT.label}: a failed stream must end with one error frame, not {_shown(last)}")
    if not (done or error):
        raise AnswerError(f"{CHAT.label}: a stream must end with `data: {DONE_DATA}` or an error frame: {_shown(last)}")
    return events


def frame_errors(event: Event) -> list[BodyError]:
    """What is wrong with one streamed event's JSON, against the spec's frame schema."""
    return VALIDATORS.errors(FRAME_SCHEMA, event.value)


def _check_event(number: int, event: Event, *, last: bool) -> None:
    if (event.done or event.error) and not last:
        kind = f"`data: {DONE_DATA}`" if event.done else "an error frame"
        raise AnswerError(f"{CHAT.label}: {kind} must be the stream's last event, but event {number} is one")
    if event.done:
        return
    if not event.parsed:
        raise AnswerError(f"{CHAT.label}: stream event {number} is neither JSON nor {DONE_DATA}: {event.data[:200]!r}")
    errors = frame_errors(event)
    if errors:
        lines = "\n".join(f"  - {error}" for error in errors)
        kind = "error frame" if event.error else "chunk"
        raise AnswerError(f"{CHAT.label}: stream event {number} ({kind}) breaks the contract:\n{lines}")


def _shown(event: Event | None) -> str:
    return "nothing" if event is None else repr(event.data[:120])
