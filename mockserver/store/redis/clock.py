"""`RedisClock`: the mock's clock offset shared in Redis, so expiry (R6) follows the admin clock on every worker."""

from __future__ import annotations

import time
from collections.abc import Callable

from mockserver.domain import checked_time
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import CLOCK, DEFAULT_NAMESPACE, Raw, Wire


class RedisClock:
    """The system clock plus an offset kept in the admin hash: setting or advancing it moves every worker's clock.

    `now` adds the offset of the worker's snapshot (`view`: no I/O). It keeps the bounds of every clock
    (`checked_time`); a move outside them changes nothing.
    """

    def __init__(
        self,
        wire: Wire,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        source: Callable[[], float] = time.time,
        view: RedisView | None = None,
    ) -> None:
        self.source = source
        self.view = view or RedisView(wire, namespace=namespace)

    def __repr__(self) -> str:
        return f"RedisClock({self.view.admin!r}, {CLOCK!r})"

    def now(self) -> float:
        return self.source() + _offset(self.view.field(CLOCK, "reading the clock"))

    async def set(self, t: float) -> float:
        offset = checked_time(t) - self.source()
        return await self.view.update(CLOCK, lambda raw: (repr(offset), self.source() + offset))

    async def advance(self, seconds: float) -> float:
        def decide(raw: Raw) -> tuple[str, float]:
            offset = checked_time(self.source() + _offset(raw) + seconds) - self.source()
            return repr(offset), self.source() + offset

        return await self.view.update(CLOCK, decide)


def _offset(raw: Raw) -> float:
    return 0.0 if raw is None else float(raw)
