"""`RedisSlots` and `RedisCounter`: the domain's `Slots` (faults, keys, automation settings, the reply
queue) and `Counter` (seeded ids) in Redis, so a fault armed or a key added through any worker is
known to all, and ids are drawn from one counter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import redis

from mockserver.store.redis.codecs import Codec
from mockserver.store.redis.transaction import Swap, Target, swap
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Names, Raw, answering, text

V = TypeVar("V")
R = TypeVar("R")


class RedisSlots(Generic[V]):
    """`Slots` in Redis: one string per name under `{<namespace>}:<kind>:`, changed by compare-and-set (`swap`).

    Reads go through `view` (one per worker, shared with the clock), so a request reads a name from
    Redis at most once while nobody changes the admin state; every change renews the view's token.
    """

    def __init__(
        self,
        client: redis.Redis,
        kind: str,
        codec: Codec[V],
        *,
        namespace: str = DEFAULT_NAMESPACE,
        view: RedisView | None = None,
    ) -> None:
        self.client = client
        self.codec = codec
        self.prefix = Names(namespace).shared(f"{kind}:")
        self.view = view or RedisView(client, namespace=namespace)

    def __repr__(self) -> str:
        return f"RedisSlots({self.prefix!r})"

    def get(self, name: str) -> V | None:
        with answering(f"reading {self.prefix}"):
            raw = self.view.read(self.prefix + name)
        return None if raw is None else self.codec.loads(raw)

    def update(self, name: str, change: Callable[[V | None], tuple[V | None, R]]) -> R:
        def decide(raw: Raw) -> tuple[Swap | None, R]:
            new, result = change(None if raw is None else self.codec.loads(raw))
            encoded = None if new is None else self.codec.dumps(new)
            if encoded == (None if raw is None else text(raw)):
                return None, result  # nothing changes: no write, no new token
            self.view.changed()
            return Swap(encoded, touch=True), result

        target = Target(self.prefix + name, self.prefix + name, 0, self.view.generation)  # no list to push to
        return swap(self.view.wire, target, decide)

    def items(self) -> list[tuple[str, V]]:
        with answering(f"listing {self.prefix}"):
            names = sorted(self.client.scan_iter(match=self.prefix + "*"))
            values = self.client.mget(names) if names else []
        found = [(name.decode().removeprefix(self.prefix), raw) for name, raw in zip(names, values, strict=True)]
        return [(name, self.codec.loads(raw)) for name, raw in found if raw is not None]


class RedisCounter:
    """A `Counter` every worker draws from (INCR): 0, 1, 2, ... across the whole mock."""

    def __init__(self, client: redis.Redis, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.client = client
        self.name = Names(namespace).shared("ids")

    def next(self) -> int:
        with answering("drawing an id"):
            return int(self.client.incr(self.name)) - 1
