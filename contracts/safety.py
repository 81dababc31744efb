"""Staging safety: count the sessions a run opens, cap them, and close what the run used at the end."""

from __future__ import annotations

import threading
from collections import Counter
from urllib.parse import urlsplit

import requests

from contracts.client import Client

SESSION = "/api/v1/session"
CREATES = (f"{SESSION}/modelsession", f"{SESSION}/bidsession")


class Ledger:
    """What the run did to the target: keys it used, sessions it opened, requests it held back and why."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.opened: set[str] = set()
        self.keys_used: set[str] = set()
        self.held_back: Counter[str] = Counter()
        self._lock = threading.Lock()

    def observe(self, response: requests.Response) -> None:
        """Listener for every response: note the key used and any session a create opened."""
        authorization = str(response.request.headers.get("Authorization", ""))
        key = authorization.removeprefix("Bearer ")
        with self._lock:
            if key.startswith("sk-") and response.status_code != 401:
                self.keys_used.add(key)
            if urlsplit(str(response.request.url)).path in CREATES and response.status_code == 200:
                session_id = _session_id(response)
                if session_id:
                    self.opened.add(session_id)

    def may_open(self) -> bool:
        with self._lock:
            return self.cap is None or len(self.opened) < self.cap

    def hold_back(self, reason: str) -> None:
        with self._lock:
            self.held_back[reason] += 1


def _session_id(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("session_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def close_all(client: Client, ledger: Ledger, keys: tuple[str, ...]) -> list[str]:
    """Close the active session of every key the run used (and of the run's own keys); returns problems."""
    problems = []
    for key in sorted(ledger.keys_used | set(keys)):
        try:
            response = client.post(f"{SESSION}/closesession", key=key)
        except requests.RequestException as error:
            problems.append(f"{key[:9]}…: {type(error).__name__}")
            continue
        if response.status_code not in (200, 401):
            problems.append(f"{key[:9]}…: closesession answered {response.status_code}")
    return problems
