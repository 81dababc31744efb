"""Injected time: the `Clock` protocol, the system clock, two clocks that can be moved (R6), and sleepers.

A `Sleeper` waits out the gateway's own pauses: for real, not at all, or on a FakeClock, which moves at once.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from mockserver.domain.errors import InvalidTime

#: 2026-01-01T00:00:00Z, shortly before v1.14.0 (the release the mock follows).
FAKE_START = 1_767_225_600.0
#: The last second a `datetime` can hold (9999-12-31T23:59:59Z).
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


class Clock(Protocol):
    """A source of the current time as UTC epoch seconds; `now` never waits."""

    def now(self) -> float: ...


class AdjustableClock(Clock, Protocol):
    """A clock the admin API and the fixture move (a shared store's moves wait for it)."""

    async def set(self, t: float) -> float: ...

    async def advance(self, seconds: float) -> float: ...


class Sleeper(Protocol):
    """How the mock waits out a pause of the gateway's own (between its attempts at the proxy-router)."""

    async def sleep(self, seconds: float) -> None: ...


class WallSleeper:
    """A real pause, as the gateway's `asyncio.sleep`."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class NoPause:
    """Pauses skipped (`--no-retry-pause`): what follows them happens at once."""

    async def sleep(self, seconds: float) -> None:
        return None


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()


class OffsetClock:
    """The system clock shifted by an offset that `set` and `advance` move (a serving mock's clock)."""

    def __init__(self, offset: float = 0.0, *, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = offset
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OffsetClock(offset={self._offset!r})"

    @property
    def offset(self) -> float:
        return self._offset

    def now(self) -> float:
        return self._source() + self._offset

    async def advance(self, seconds: float) -> float:
        """Move the clock by `seconds` (negative moves it back) and return the new time."""
        with self._lock:
            return self._move_to(self.now() + seconds)

    async def set(self, t: float) -> float:
        """Move the clock to `t` epoch seconds (it keeps running from there) and return it."""
        with self._lock:
            return self._move_to(t)

    def _move_to(self, t: float) -> float:
        self._offset = checked_time(t) - self._source()
        return self._source() + self._offset


class FakeClock:
    """A clock that only moves when told to; thread-safe."""

    def __init__(self, start: float = FAKE_START) -> None:
        self._now = checked_time(start)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"

    def now(self) -> float:
        return self._now

    async def advance(self, seconds: float) -> float:
        """Move the clock by `seconds` (negative moves it back) and return the new time."""
        with self._lock:
            self._now = checked_time(self._now + seconds)
            return self._now

    async def set(self, t: float) -> float:
        """Move the clock to `t` epoch seconds and return it."""
        with self._lock:
            self._now = checked_time(t)
            return self._now

    async def sleep(self, seconds: float) -> None:
        """A `Sleeper` whose pauses pass on this clock at once: tests see the time go by without waiting."""
        await self.advance(seconds)


def checked_time(t: float) -> float:
    """`t` as a float, if a clock may show it (a finite time a `datetime` can hold).

    Raises:
        InvalidTime: a time before the epoch, after year 9999, or not a number.
    """
    if not (math.isfinite(t) and 0 <= t <= MAX_TIME):
        raise InvalidTime(f"clock time must be between 0 and {MAX_TIME:.0f} epoch seconds, got {t!r}")
    return float(t)
