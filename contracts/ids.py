"""Every session id the run's answers named, remembered for the whole run (all tests, all keys).

A listener on every response (`SessionIds.observe`) checks two things no single test can see, whichever
test sent the request: a session belongs to one key (an answer to one key never names a session another
key's answer named: R7), and an ended session never comes back (once a close answered that it ended it,
R4, or a ping that it expired, R6, no create, ping or close names it again). A dead ping ends nothing
here: v1.14.0 keeps a dead session whose close failed (observed-v1.14.0.md 1.4). The state machine also
asks whether an id it must get as new was seen before anywhere in the run (`seen_before`).

Under pytest-xdist each worker remembers its own run (its keys are its own, so no other worker's answers
name them).
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import requests

from contracts.answers import RuleBroken
from contracts.api import BID_SESSION, CLOSE, MODEL_SESSION, PING

NAMING = {operation.path: operation for operation in (MODEL_SESSION, BID_SESSION, PING, CLOSE)}
ENDED_BY_CLOSE = frozenset({"Session closed successfully", "Expired session marked as inactive"})


class SessionIds:
    def __init__(self) -> None:
        self.owner: dict[str, str] = {}  # session id -> the key whose answer named it first
        self.first_seen: dict[str, int] = {}  # session id -> the number of the answer that named it first (from 0)
        self.ended: dict[str, str] = {}  # session id -> the rule that ended it (R4 close, R6 expired ping)
        self.models: dict[str, str] = {}  # session id -> the model_id a modelsession that named it echoed
        self.answers = 0
        self._lock = threading.Lock()

    def mark(self) -> int:
        """A point in the run: ids first seen after it are new to the run."""
        with self._lock:
            return self.answers

    def seen_before(self, session_id: str, mark: int) -> bool:
        with self._lock:
            return self.first_seen.get(session_id, mark) < mark

    def model_of(self, session_id: object) -> str | None:
        """The model_id a modelsession that named this session was sent (None: no modelsession named it)."""
        with self._lock:
            return self.models.get(session_id) if isinstance(session_id, str) else None

    def observe(self, response: requests.Response) -> None:
        operation = NAMING.get(urlsplit(str(response.request.url)).path)
        body = _json(response) if operation is not None and response.status_code == 200 else None
        session_id = body.get("session_id") if body is not None else None
        key = str(response.request.headers.get("Authorization", "")).removeprefix("Bearer ")
        with self._lock:
            number, self.answers = self.answers, self.answers + 1
            if operation is None or body is None or not isinstance(session_id, str):
                return
            owner = self.owner.setdefault(session_id, key)
            if operation is MODEL_SESSION and isinstance(body.get("model"), str):
                self.models.setdefault(session_id, str(body["model"]))
            self.first_seen.setdefault(session_id, number)
            ended = self.ended.get(session_id)
            expired = operation is PING and body.get("status") == "expired"
            if expired or (operation is CLOSE and body.get("message") in ENDED_BY_CLOSE):
                self.ended.setdefault(session_id, "R6" if operation is PING else "R4")
        if owner != key:
            raise RuleBroken(
                "R7",
                f"{operation.label} for key {key[:9]}… named session {session_id}, which this run saw as key "
                f"{owner[:9]}…'s",
            )
        if ended is not None:
            raise RuleBroken(
                ended,
                f"{operation.label} for key {key[:9]}… named session {session_id}, which ended earlier in this run "
                f"({'closed' if ended == 'R4' else 'expired'}): an ended session never comes back",
            )


def _json(response: requests.Response) -> dict[str, object] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
