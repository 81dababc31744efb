"""`RedisSlots` and `RedisCounter`: the domain's `Slots` (faults, keys, automation settings, the reply
queue) and `Counter` (seeded ids) in Redis, so a fault armed or a key added through any worker is
known to all, and ids are drawn from one counter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from mockserver.store.redis.codecs import Codec
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Names, Raw, Wire, answering

V = TypeVar("V")
R = TypeVar("R")


class RedisSlots(Generic[V]):
    """`Slots` in Redis: one field `<kind>:<name>` of the admin hash per name, changed by compare-and-set.

    `get` answers from the worker's snapshot (`view`, shared with the clock: no I/O), decoding a value
    once while it stays the same; `update` writes through the view, which then holds the new value.
    """

    def __init__(
        self,
        wire: Wire,
        kind: str,
        codec: Codec[V],
        *,
        namespace: str = DEFAULT_NAMESPACE,
        view: RedisView | None = None,
    ) -> None:
        self.codec = codec
        self.prefix = f"{kind}:"
        self.view = view or RedisView(wire, namespace=namespace)
        self._decoded: dict[str, tuple[bytes | str, V]] = {}  # a field's value as last decoded, and its text

    def __repr__(self) -> str:
        return f"RedisSlots({self.view.admin!r}, {self.prefix!r})"

    def get(self, name: str) -> V | None:
        raw = self.view.field(self.prefix + name, f"reading {self.prefix}")
        if raw is None:
            return None
        decoded = self._decoded.get(name)
        if decoded is not None and decoded[0] is raw:
            return decoded[1]
        value = self.codec.loads(raw)
        self._decoded[name] = (raw, value)
        return value

    async def update(self, name: str, change: Callable[[V | None], tuple[V | None, R]]) -> R:
        def decide(raw: Raw) -> tuple[str | None, R]:
            new, result = change(None if raw is None else self.codec.loads(raw))
            return (None if new is None else self.codec.dumps(new)), result

        return await self.view.update(self.prefix + name, decide)

    async def items(self) -> list[tuple[str, V]]:
        with answering(f"listing {self.prefix}"):
            fields = await self.view.fields()
        found = sorted(
            (name.removeprefix(self.prefix), raw) for name, raw in fields.items() if name.startswith(self.prefix)
        )
        return [(name, self.codec.loads(raw)) for name, raw in found]


class RedisCounter:
    """A `Counter` every worker draws from (INCR): 0, 1, 2, ... across the whole mock."""

    def __init__(self, wire: Wire, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.wire = wire
        self.name = Names(namespace).shared("ids")

    async def next(self) -> int:
        with answering("drawing an id"):
            (drawn,) = await self.wire.call(["INCR", self.name])
        return int(drawn) - 1
