"""The request journal: a bounded record of what the mock was asked and answered (keys by prefix only)."""

from __future__ import annotations

import threading
from collections import deque
from typing import NamedTuple, Protocol


class JournalEntry(NamedTuple):  # a tuple, not a frozen dataclass: one is recorded per request, at half the cost
    at: float
    method: str
    path: str
    query: str
    key: str | None
    operation_id: str | None
    status: int
    upstream: tuple[int | None, ...] = ()  # the proxy-router's status per attempt the gateway made (None: unreachable)


class JournalLog(Protocol):
    """Where the journal lives: this process (`Journal`), or the shared store (`RedisJournal`)."""

    def record(self, entry: JournalEntry) -> None:
        """Add one request's entry; never waits (the shared store's is sent without waiting for its answer)."""
        ...

    async def entries(self, *, key: str | None = None, limit: int | None = None) -> list[dict[str, object]]:
        """The newest entries first, of one key prefix or all, at most `limit`, JSON-ready."""
        ...

    async def clear(self) -> int:
        """Forget every entry and return how many there were."""
        ...


def select(newest_first: list[JournalEntry], key: str | None, limit: int | None) -> list[dict[str, object]]:
    """The entries of one key prefix (None: all), at most `limit`, JSON-ready."""
    chosen = [entry for entry in newest_first if key is None or entry.key == key]
    return [entry._asdict() for entry in chosen[:limit]]


class Journal:
    """A `JournalLog` in this process: newest entries win; older ones fall off past `size`."""

    def __init__(self, size: int) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, entry: JournalEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    async def entries(self, *, key: str | None = None, limit: int | None = None) -> list[dict[str, object]]:
        with self._lock:
            newest_first = list(reversed(self._entries))
        return select(newest_first, key, limit)

    async def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
        return count
