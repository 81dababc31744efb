"""Staging safety: count the sessions a run opens, cap them, share the cap out, and close what the run used.

The session budget serves the rules first. Every rule check declares the sessions it needs (the
`sessions=` of its `contract` marker); at collection the ledger reserves them. A check may open a
session while the ones it leaves free cover every other check's reservation; the generated
Schemathesis cases may open one only while every reservation stays covered; a check's reservation is
released when it ends. Rule checks also run first (see `contracts/conftest.py`). A reservation with a
`share=` rank (the scenarios' further opens, `more=`, at rank 0; the state machine's sequences; the
generated modelsessions) is what the cap leaves beyond the fixed ones, split evenly within a rank
(`Ledger.share_out`): at the example CI job's cap of 10 the scenarios' further opens get theirs and the
machine what is left. What a check opens beyond its reservation (R7's further creates, R8's
repeated bursts) leaves `MACHINE_SHARE` beyond every reservation, and the machine beyond its own leaves
`GENERATED_SHARE`, to the generated cases: the first valid modelsession they send opens the session the
others reuse (contracts/test_conformance.py), when the machine left them none.
"""

from __future__ import annotations

import threading
from collections import Counter
from urllib.parse import urlsplit

import requests

from contracts.answers import expect_answer
from contracts.api import CLOSE, CREATES
from contracts.client import Client

CREATE_PATHS = frozenset(operation.path for operation in CREATES)
MACHINE_SHARE = 1  # sessions the checks' extra creates leave beyond every reservation (to the generated cases)
# Sessions the state machine leaves, beyond its reservation, to the generated cases: the one their
# modelsessions open and reuse, and one under the cap (a reuse is sent only below it).
GENERATED_SHARE = 2


class Ledger:
    """What the run did to the target: keys it used, sessions it opened and promised, requests held back."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.opened: set[str] = set()
        self.keys_used: set[str] = set()
        self.held_back: Counter[str] = Counter()
        self.reserved: dict[str, int] = {}  # owner (a test's node id) -> sessions promised to it
        self._lock = threading.Lock()

    def observe(self, response: requests.Response) -> None:
        """Listener for every response: note the key used and any session a create opened."""
        authorization = str(response.request.headers.get("Authorization", ""))
        key = authorization.removeprefix("Bearer ")
        with self._lock:
            if key.startswith("sk-") and response.status_code != 401:
                self.keys_used.add(key)
            if urlsplit(str(response.request.url)).path in CREATE_PATHS and response.status_code == 200:
                session_id = _session_id(response)
                if session_id:
                    self.opened.add(session_id)

    def count(self, session_id: str) -> None:
        """A session the run opened without a create (a chat or embeddings request opened it)."""
        with self._lock:
            self.opened.add(session_id)

    def reserve(self, owner: str, sessions: int) -> None:
        with self._lock:
            self.reserved[owner] = sessions

    def share_out(self, shares: list[tuple[int, str, int]], keep: int = 0) -> None:
        """Reserve (rank, owner, sessions) asks from what the cap leaves beyond the fixed reservations and
        `keep` (the chat scenarios' sessions, which they do not reserve), rank by rank, split evenly within a
        rank (the first ones get the odd session; each at most what it asks), each on top of the owner's
        fixed reservation if it has one."""
        left = None if self.cap is None else max(self.cap - sum(self.reserved.values()) - keep, 0)
        for rank in sorted({share[0] for share in shares}):
            group = [(owner, asked) for level, owner, asked in shares if level == rank]
            for index, (owner, asked) in enumerate(group):
                given = asked if left is None else max(min(asked, -(-left // (len(group) - index))), 0)
                self.reserve(owner, self.reserved.get(owner, 0) + given)  # on top of a fixed one (`more=`)
                left = None if left is None else left - given

    def holds(self, owner: str, spent: int, sessions: int = 1) -> bool:
        """Whether `owner`'s reservation holds `sessions` more beyond the `spent` it opened (always without a cap)."""
        with self._lock:
            return self.cap is None or self.reserved.get(owner, 0) - spent >= sessions

    def release(self, owner: str) -> None:
        with self._lock:
            self.reserved.pop(owner, None)

    def free(self, owner: str | None = None, keep: int = 0) -> int | None:
        """Sessions `owner` may still open: the cap less those opened, every other owner's reservation and
        `keep` (None: no cap). `owner=None` is a generated case: every reservation counts."""
        with self._lock:
            if self.cap is None:
                return None
            promised = sum(n for name, n in self.reserved.items() if name != owner)
            return max(self.cap - len(self.opened) - promised - keep, 0)

    def may_open(self, owner: str | None = None, sessions: int = 1, keep: int = 0) -> bool:
        free = self.free(owner, keep)
        return free is None or free >= sessions

    def below_cap(self) -> bool:
        """Fewer sessions opened than the cap: a create the suite predicts opens nothing may be sent (a
        gateway that opens one anyway then cannot take the run past the cap)."""
        with self._lock:
            return self.cap is None or len(self.opened) < self.cap

    def hold_back(self, reason: str) -> None:
        with self._lock:
            self.held_back[reason] += 1


def cap_share(cap: int | None, index: int, count: int) -> int | None:
    """One of `count` parallel workers' share of the session cap, so that together they never exceed it."""
    if cap is None or count <= 1:
        return cap
    share = cap // count + (1 if index < cap % count else 0)
    if share < 1:
        raise ValueError(f"a session cap of {cap} cannot be shared by {count} parallel workers: raise --max-sessions")
    return share


def _session_id(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("session_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def close_all(client: Client, ledger: Ledger, keys: tuple[str, ...]) -> list[str]:
    """Close the active session of every key the run used (and of the run's own keys), checking each
    answer against the spec; returns the problems."""
    problems = []
    for key in sorted(ledger.keys_used | set(keys)):
        try:
            response = client.post(CLOSE.path, key=key)
            if response.status_code != 401:
                expect_answer(CLOSE, response)
        except requests.RequestException as error:
            problems.append(f"{key[:9]}…: {type(error).__name__}")
        except AssertionError as error:  # a wrong answer, or one naming an ended or another key's session
            problems.append(f"{key[:9]}…: {str(error).splitlines()[0]}")
    return problems
