"""`RedisClock`: the mock's clock offset shared in Redis, so expiry (R6) follows the admin clock on every worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis
from redis.client import Pipeline

from mockserver.domain import checked_time
from mockserver.store.redis.transaction import optimistic
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Names, answering


class RedisClock:
    """The system clock plus an offset kept in Redis: setting or advancing it moves every worker's clock.

    It keeps the bounds of every clock (`checked_time`); a move outside them changes nothing. The
    offset is read through `view`, so a request reads it from Redis at most once while it is unchanged.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        source: Callable[[], float] = time.time,
        view: RedisView | None = None,
    ) -> None:
        self.client = client
        self.name = Names(namespace).shared("clock-offset")
        self.source = source
        self.view = view or RedisView(client, namespace=namespace)

    def __repr__(self) -> str:
        return f"RedisClock({self.name!r})"

    def now(self) -> float:
        with answering("reading the clock"):
            return self.source() + float(self.view.read(self.name) or 0.0)

    def set(self, t: float) -> float:
        offset = checked_time(t) - self.source()
        with answering("setting the clock"), self.client.pipeline() as pipe:
            pipe.set(self.name, repr(offset))
            self.view.touch(pipe)
            pipe.execute()
        self.view.changed()
        return self.now()

    def advance(self, seconds: float) -> float:
        def decide(pipe: Pipeline) -> tuple[Callable[[Pipeline], Any], None]:
            target = checked_time(self.source() + float(pipe.get(self.name) or 0.0) + seconds)
            offset = target - self.source()

            def write(pipe: Pipeline) -> None:
                pipe.set(self.name, repr(offset))
                self.view.touch(pipe)

            return write, None

        optimistic(self.client, [self.name], decide)
        self.view.changed()
        return self.now()
