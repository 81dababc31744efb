"""Session storage: the `SessionStore` protocol and its in-memory implementation (R7, R8).

A key's stored value is its `KeyRecord`: the gateway's active row and the sessions open on chain.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol, TypeVar

from mockserver.domain.immediate import immediate
from mockserver.domain.sessions import KeyRecord, Session

T = TypeVar("T")
EMPTY = KeyRecord()
Change = Callable[[KeyRecord], Coroutine[Any, Any, tuple[KeyRecord, T]]]
Ended = Callable[[T], Iterable[Session]]
"""The sessions a transaction's result ended: recorded in the history in the same atomic step."""


def _none(result: object) -> tuple[Session, ...]:
    return ()


class SessionStore(Protocol):
    """Per-key records (both views of a key's sessions) plus a bounded history of ended ones.

    A store for several processes (Redis, say) must keep `transact` atomic per key (R8); `change`
    may then run more than once (optimistic retries), so it has no side effects beyond drawing ids and
    taking the upstream's answers once (the book keeps them across retries). It may wait (the upstream
    takes armed faults from a shared store). The sessions `ended(result)` names join the history in the
    same atomic step, so a store that fails between the two cannot lose a session.
    """

    async def transact(self, key: str, change: Change[T], ended: Ended[T] = _none) -> T:
        """Apply `change` to the key's record atomically, store the new record, return the rest."""
        ...

    async def record(self, key: str) -> KeyRecord: ...

    async def keys(self) -> tuple[str, ...]:
        """The keys whose record holds something (an active row or a session open on chain)."""
        ...

    async def reset(self, key: str | None = None) -> None:
        """Forget the record and the history of one key, or of every key."""
        ...

    async def history(self, key: str | None = None, limit: int | None = None) -> tuple[Session, ...]:
        """Ended sessions, newest first."""
        ...


HISTORY_LIMIT = 1000  # ended sessions the history keeps unless told (`--history-size`)


class InMemoryStore:
    """A `SessionStore` for one process: one lock makes every `transact` atomic (R8).

    Its `change` runs to its end under the lock without waiting (`immediate`): state in this process
    answers at once, so no other coroutine or thread sees the key between the read and the write.
    """

    def __init__(self, history_limit: int = HISTORY_LIMIT) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, KeyRecord] = {}
        self._history: deque[Session] = deque(maxlen=history_limit)

    def __repr__(self) -> str:
        return f"InMemoryStore({len(self._records)} keys, {len(self._history)} ended)"

    async def transact(self, key: str, change: Change[T], ended: Ended[T] = _none) -> T:
        with self._lock:
            new, result = immediate(change(self._records.get(key, EMPTY)))
            if new.empty:
                self._records.pop(key, None)
            else:
                self._records[key] = new
            self._history.extend(ended(result))
            return result

    async def record(self, key: str) -> KeyRecord:
        with self._lock:
            return self._records.get(key, EMPTY)

    async def keys(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted(self._records))

    async def reset(self, key: str | None = None) -> None:
        with self._lock:
            kept = [] if key is None else [s for s in self._history if s.key != key]
            self._history = deque(kept, maxlen=self._history.maxlen)
            if key is None:
                self._records.clear()
            else:
                self._records.pop(key, None)

    async def history(self, key: str | None = None, limit: int | None = None) -> tuple[Session, ...]:
        with self._lock:
            ended = [s for s in reversed(self._history) if key is None or s.key == key]
        return tuple(itertools.islice(ended, limit))
