"""`RedisJournal`: the domain's `JournalLog` in Redis, one capped list every worker appends to."""

from __future__ import annotations

import json

from mockserver.domain import JournalEntry
from mockserver.domain.journal import select
from mockserver.store.redis.codecs import journal_entry
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Names, Wire, answering


class RedisJournal:
    """A `JournalLog` in Redis: one capped list that every worker appends to (newest first).

    A request's entry is sent without waiting for Redis (`Wire.send`): it costs the request no round
    trip, and its answer is checked when it comes. `entries` and `clear` go down the same line after
    it (Redis answers a connection's commands in order), so a worker always reads its own entries.
    """

    def __init__(self, wire: Wire, size: int, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.size = size
        self.name = Names(namespace).shared("journal")
        self.wire = wire

    def record(self, entry: JournalEntry) -> None:
        self.wire.send(["LPUSH", self.name, json.dumps(entry)], ["LTRIM", self.name, 0, self.size - 1])

    async def entries(self, *, key: str | None = None, limit: int | None = None) -> list[dict[str, object]]:
        with answering("reading the journal"):
            (raw,) = await self.wire.call(["LRANGE", self.name, 0, -1])
        return select([journal_entry(item) for item in raw], key, limit)

    async def clear(self) -> int:
        with answering("clearing the journal"):
            count, _ = await self.wire.call(["LLEN", self.name], ["DEL", self.name])
        return int(count)
