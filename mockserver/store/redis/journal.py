"""`RedisJournal`: the domain's `JournalLog` in Redis, one capped list every worker appends to."""

from __future__ import annotations

import json

import redis

from mockserver.domain import JournalEntry
from mockserver.domain.journal import select
from mockserver.store.redis.codecs import journal_entry
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Wire, answering


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
        return select([journal_entry(item) for item in raw], key, limit)

    def clear(self) -> int:
        with answering("clearing the journal"), self.client.pipeline() as pipe:
            pipe.llen(self.name)
            pipe.delete(self.name)
            count, _ = pipe.execute()
        return int(count)
