"""The admin state every worker shares through Redis: faults, keys, ids and the journal.

With `--store`, a fault armed through any worker is used exactly once across all of them, a key
added or revoked through any worker is known to all, seeded ids are drawn from one counter and the
journal records every worker's requests. Each piece implements the domain's interface for it
(`Slots`, `Counter`, `JournalLog`); every Redis failure leaves as a `StoreError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Generic, Protocol, TypeVar

import redis

from mockserver.domain import ApiKey, Automation, Fault, FaultKind, JournalEntry, QueuedReply, ToolCallReply
from mockserver.domain.faults import Broken
from mockserver.domain.journal import select
from mockserver.redis_store import DEFAULT_NAMESPACE, Raw, RedisView, Swap, Target, Wire, answering, swap

V = TypeVar("V")
R = TypeVar("R")


class Codec(Protocol[V]):
    """How a slot's value is written to Redis and read back."""

    def dumps(self, value: V) -> str: ...

    def loads(self, raw: bytes | str) -> V: ...


class FaultsCodec:
    """Armed faults as a JSON list of their fields."""

    def dumps(self, value: tuple[Fault, ...]) -> str:
        return json.dumps([{**asdict(fault), "kind": fault.kind.value} for fault in value])

    def loads(self, raw: bytes | str) -> tuple[Fault, ...]:
        return tuple(_fault(fields) for fields in json.loads(raw))


def _fault(fields: dict[str, Any]) -> Fault:
    broke = fields.get("broke")
    return Fault(**{**fields, "kind": FaultKind(fields["kind"]), "broke": None if broke is None else Broken(**broke)})


class KeysCodec:
    """A prefix's registered keys (prefix, hash of the full key, revoked) as a JSON list."""

    def dumps(self, value: tuple[ApiKey, ...]) -> str:
        return json.dumps([asdict(entry) for entry in value])

    def loads(self, raw: bytes | str) -> tuple[ApiKey, ...]:
        return tuple(ApiKey(**fields) for fields in json.loads(raw))


class AutomationCodec:
    """A key's automation setting as a JSON object."""

    def dumps(self, value: Automation) -> str:
        return json.dumps(asdict(value))

    def loads(self, raw: bytes | str) -> Automation:
        return Automation(**json.loads(raw))


class RepliesCodec:
    """The provider's reply queue as a JSON list of the replies' fields."""

    def dumps(self, value: tuple[QueuedReply, ...]) -> str:
        return json.dumps([asdict(reply) for reply in value])

    def loads(self, raw: bytes | str) -> tuple[QueuedReply, ...]:
        return tuple(_reply(fields) for fields in json.loads(raw))


def _reply(fields: dict[str, Any]) -> QueuedReply:
    return QueuedReply(**{**fields, "tool_calls": tuple(ToolCallReply(**call) for call in fields["tool_calls"])})


def _journal_entry(fields: list[Any]) -> JournalEntry:
    """An entry as written (a JSON list), its upstream statuses a tuple again (none in an older entry)."""
    entry = JournalEntry(*fields)
    return entry._replace(upstream=tuple(entry.upstream))


class RedisSlots(Generic[V]):
    """`Slots` in Redis: one string per name under `<namespace>:<kind>:`, changed by optimistic transactions.

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
        self.prefix = f"{namespace}:{kind}:"
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
            if encoded == (raw.decode() if isinstance(raw, bytes) else raw):
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
        self.name = f"{namespace}:ids"

    def next(self) -> int:
        with answering("drawing an id"):
            return int(self.client.incr(self.name)) - 1


class RedisJournal:
    """A `JournalLog` in Redis: one capped list that every worker appends to (newest first)."""

    def __init__(
        self, client: redis.Redis, size: int, *, namespace: str = DEFAULT_NAMESPACE, wire: Wire | None = None
    ) -> None:
        self.client = client
        self.size = size
        self.name = f"{namespace}:journal"
        self.wire = wire or Wire(client)  # a request's entry: one round trip on the worker's connection

    def record(self, entry: JournalEntry) -> None:
        with answering("journaling a request"):
            self.wire.call(["LPUSH", self.name, json.dumps(entry)], ["LTRIM", self.name, 0, self.size - 1])

    def entries(self, *, key: str | None = None, limit: int | None = None) -> list[dict[str, object]]:
        with answering("reading the journal"):
            raw = self.client.lrange(self.name, 0, -1)
        return select([_journal_entry(json.loads(item)) for item in raw], key, limit)

    def clear(self) -> int:
        with answering("clearing the journal"), self.client.pipeline() as pipe:
            pipe.llen(self.name)
            pipe.delete(self.name)
            count, _ = pipe.execute()
        return int(count)
