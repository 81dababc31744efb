"""State every worker of one mock must agree on, behind one small interface.

`Slots` are named values changed atomically one name at a time (the same shape as
`SessionStore.transact`): the fault plan keeps its armed faults in one slot, the key registry one
slot per key prefix. `LocalSlots` keeps them in this process; `mockserver.store.redis.slots.RedisSlots`
keeps them in Redis, so every worker and host that shares the store sees one plan and one registry.
A `change` may run more than once (optimistic retries in Redis): it computes, it does not act.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

V = TypeVar("V")
R = TypeVar("R")


class Slots(Protocol[V]):
    """Named values; `update` reads, changes and writes one name atomically.

    `get` never waits: a shared store answers it from what the worker read as its request began (and its
    own writes since), so the domain reads the admin state without a round trip; changes and listings wait.
    """

    def get(self, name: str) -> V | None: ...

    async def update(self, name: str, change: Callable[[V | None], tuple[V | None, R]]) -> R:
        """Store `change(current)[0]` under `name` (None deletes it) and return `change(current)[1]`."""
        ...

    async def items(self) -> list[tuple[str, V]]:
        """Every stored name and value, sorted by name."""
        ...


class LocalSlots(Generic[V]):
    """`Slots` in this process: reads take no lock (a dict lookup is atomic), changes take one."""

    def __init__(self) -> None:
        self._values: dict[str, V] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalSlots({len(self._values)} names)"

    def get(self, name: str) -> V | None:
        return self._values.get(name)

    async def update(self, name: str, change: Callable[[V | None], tuple[V | None, R]]) -> R:
        with self._lock:
            new, result = change(self._values.get(name))
            if new is None:
                self._values.pop(name, None)
            else:
                self._values[name] = new
            return result

    async def items(self) -> list[tuple[str, V]]:
        with self._lock:
            return sorted(self._values.items(), key=lambda item: item[0])


class Counter(Protocol):
    """A sequence of numbers 0, 1, 2, ... shared by everyone who draws from it."""

    async def next(self) -> int: ...


class LocalCounter:
    """A `Counter` in this process."""

    def __init__(self) -> None:
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    async def next(self) -> int:
        with self._lock:
            return next(self._numbers)
