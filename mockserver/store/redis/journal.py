"""`RedisJournal`: the domain's `JournalLog` in Redis, one capped list every worker appends to."""

from __future__ import annotations

import asyncio

from mockserver.domain import JournalEntry
from mockserver.domain.journal import select
from mockserver.store.redis.codecs import dumps, journal_entry
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Names, Wire, answering

TRIM_EVERY = 16  # one LTRIM per this many entries: a push sends one command, not two


class RedisJournal:
    """A `JournalLog` in Redis: one capped list that every worker appends to (newest first).

    A request's entry is sent without waiting for Redis (`Wire.send`): it costs the request no round
    trip, and its answer is checked when it comes. The entries of one loop turn go in ONE push, at the
    turn's end (one command and one answer for all, not one each). `entries` and `clear` send what waits
    first, then go down the same line after it (Redis answers a connection's commands in order), so a
    worker always reads its own entries.
    """

    def __init__(self, wire: Wire, size: int, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.size = size
        self.name = Names(namespace).shared("journal")
        self.wire = wire
        self.pushed = 0  # entries this worker pushed: a push that passes a multiple of TRIM_EVERY trims to `size`
        self._waiting: list[bytes] = []  # this turn's entries, encoded

    def record(self, entry: JournalEntry) -> None:
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._push)
        self._waiting.append(dumps(tuple(entry)))

    def _push(self) -> None:
        """Send the entries waiting, in one LPUSH (newest first, as one push each would leave them)."""
        if not self._waiting:
            return
        entries, self._waiting = self._waiting, []
        before, self.pushed = self.pushed, self.pushed + len(entries)
        push = ["LPUSH", self.name, *entries]
        if before // TRIM_EVERY == self.pushed // TRIM_EVERY:
            self.wire.send(push)
        else:  # the list may hold up to TRIM_EVERY entries beyond `size` per worker: reads take the first `size`
            self.wire.send(push, ["LTRIM", self.name, 0, self.size - 1])

    async def entries(self, *, key: str | None = None, limit: int | None = None) -> list[dict[str, object]]:
        self._push()
        with answering("reading the journal"):
            (raw,) = await self.wire.call(["LRANGE", self.name, 0, self.size - 1])
        return select([journal_entry(item) for item in raw], key, limit)

    async def clear(self) -> int:
        self._push()
        with answering("clearing the journal"):
            count, _ = await self.wire.call(["LLEN", self.name], ["DEL", self.name])
        return min(int(count), self.size)
