"""Bounded optimistic transactions: `swap` (one GET, then the compare-and-set script) and `optimistic`
(WATCH, MULTI/EXEC), each retried on a conflict with a growing pause, `ATTEMPTS` times at most."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.client import Pipeline

from mockserver.store.errors import StoreBusy
from mockserver.store.redis.wire import Raw, Wire, answering, new_token

ATTEMPTS = 20  # optimistic transactions: conflicts survived before StoreBusy
PAUSE = 0.001  # seconds before the first retry; doubled each time up to PAUSE_MAX
PAUSE_MAX = 0.032
R = TypeVar("R")


def optimistic(
    client: redis.Redis, names: Sequence[str], decide: Callable[[Pipeline], tuple[Callable[[Pipeline], Any], R]]
) -> R:
    """WATCH `names`, `decide` on what they hold, queue its writes in MULTI and EXEC; retry on a conflict.

    Raises:
        StoreBusy: every one of `ATTEMPTS` attempts met a conflicting write.
        StoreUnavailable: Redis failed.
    """
    with answering(f"transaction on {names[0]}"), client.pipeline() as pipe:
        for attempt in range(ATTEMPTS):
            try:
                pipe.watch(*names)  # type: ignore[no-untyped-call]
                write, result = decide(pipe)
                pipe.multi()
                write(pipe)
                pipe.execute()
                return result
            except redis.WatchError:
                time.sleep(min(PAUSE * 2**attempt, PAUSE_MAX))  # another worker changed it: decide again
    raise StoreBusy(f"{names[0]} changed under every one of {ATTEMPTS} attempts; try again")


@dataclass(frozen=True)
class Swap:
    """What `swap` writes if the name still holds what was read: its new value (None deletes it)."""

    value: str | None
    pushed: Sequence[str] = ()  # entries for the capped list, pushed in this order (newest last)
    touch: bool = False  # a new generation token: every worker's `RedisView` reads the name again


@dataclass(frozen=True)
class Target:
    """Where `swap` writes: the name, the capped list (and its cap) and the generation token's name."""

    name: str
    listing: str
    cap: int
    generation: str


def swap(
    wire: Wire, target: Target, decide: Callable[[Raw], tuple[Swap | None, R]], ahead: tuple[Raw] | None = None
) -> R:
    """Read `target.name`, `decide` what to write (None: nothing), write it if the name is unchanged; retry if not.

    Two round trips (GET, then the script by its hash, sent whole if the server forgot it) instead of
    WATCH, GET and MULTI/EXEC;
    one if the name was read `ahead` (`RedisView.ahead`): a stale value only costs a retry, at once.

    Raises:
        StoreBusy: every one of `ATTEMPTS` attempts met a conflicting write.
        StoreUnavailable: Redis failed.
    """
    with answering(f"transaction on {target.name}"):
        for attempt in range(ATTEMPTS):
            first = attempt == 0 and ahead is not None
            raw = ahead[0] if ahead is not None and first else wire.call(["GET", target.name])[0]
            writes, result = decide(raw)
            if writes is None:
                return result
            token = new_token() if writes.touch else ""
            present = ("0", "") if raw is None else ("1", raw)
            value = ("0", "") if writes.value is None else ("1", writes.value)
            args = [*present, *value, token, target.cap, *writes.pushed]
            keys = [target.name, target.listing, *([target.generation] if writes.touch else [])]  # one tag
            if wire.swap(keys, args):
                return result
            if not first:  # a value read ahead may be stale without anyone contending: no pause then
                time.sleep(min(PAUSE * 2**attempt, PAUSE_MAX))  # another worker changed it: decide again
    raise StoreBusy(f"{target.name} changed under every one of {ATTEMPTS} attempts; try again")
