"""`RedisJournal`: the domain's `JournalLog` in Redis, one capped list every worker appends to."""

from __future__ import annotations

import json

import redis

from mockserver.domain import JournalEntry
from mockserver.domain.journal import select
from mockserver.store.redis.codecs import journal_entry
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Names, Wire, answering


class RedisJournal:
    """A `JournalLog` in Redis: one capped list that every worker appends to (newest first).

    A request's entry is sent without waiting for Redis (`Wire.send`): it costs the request no round
    trip. The worker's next command on that connection reads its answer first, and `entries` and
    `clear` go through the same `Wire`, so a worker always reads its own entries.
    """

    def __init__(
        self, client: redis.Redis, size: int, *, namespace: str = DEFAULT_NAMESPACE, wire: Wire | None = None
    ) -> None:
        self.size = size
        self.name = Names(namespace).shared("journal")
        self.wire = wire or Wire(client)  # the worker's connection

    def record(self, entry: JournalEntry) -> None:
        with answering("journaling a request"):
            self.wire.send(["LPUSH", self.name, json.dumps(entry)], ["LTRIM", self.name, 0, self.size - 1])

    def entries(self, *, key: str | None = None, limit: int | None = None) -> list[dict[str, object]]:
        with answering("reading the journal"):
            (raw,) = self.wire.call(["LRANGE", self.name, 0, -1])
        return select([journal_entry(item) for item in raw], key, limit)

    def clear(self) -> int:
        with answering("clearing the journal"):
            count, _ = self.wire.call(["LLEN", self.name], ["DEL", self.name])
        return int(count)
