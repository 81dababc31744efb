"""Bounded optimistic transactions: `swap` decides on a value, writes it by a compare-and-set script, and
on a conflict decides again on the value the script found, with a growing pause, `ATTEMPTS` times at most."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mockserver.store.errors import StoreBusy
from mockserver.store.redis.wire import Raw

ATTEMPTS = 20  # optimistic transactions: conflicts survived before StoreBusy
PAUSE = 0.0002  # seconds before the second retry; doubled each time up to PAUSE_MAX (about 0.1 s in all)
PAUSE_MAX = 0.008
W = TypeVar("W")
R = TypeVar("R")

Decide = Callable[[Raw], Awaitable[tuple[W | None, R]]]
"""What to write given what the name holds (None: nothing), and the result."""
Write = Callable[[Raw, W], Awaitable[tuple[bool, Raw]]]
"""Write if the name still holds the value decided on: (written, else what it holds now)."""


async def swap(name: str, raw: Raw, decide: Decide[W, R], write: Write[W], *, attempts: int = ATTEMPTS) -> R:
    """`decide` on `raw` (what `name` was seen to hold), `write` if it still holds that; on a conflict decide
    again on what the script found there (no read trip). The first conflict is retried at once: the value
    seen may have been read ahead, stale without anyone contending.

    Raises:
        StoreBusy: every one of `attempts` attempts (`ATTEMPTS` in all: a caller that tried before gives fewer)
            met a conflicting write.
    """
    for attempt in range(attempts):
        writes, result = await decide(raw)
        if writes is None:
            return result
        written, raw = await write(raw, writes)
        if written:
            return result
        if attempt:
            await asyncio.sleep(min(PAUSE * 2 ** (attempt - 1), PAUSE_MAX))  # another worker changed it
    raise StoreBusy(f"{name} changed under every one of {ATTEMPTS} attempts; try again")
