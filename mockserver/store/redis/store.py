"""`RedisStore`: the domain's `SessionStore` in Redis, shared by every worker that uses the same server.

A key's record (its gateway row and the sessions open on chain, one JSON value) is one Redis string,
and every transition is atomic per key (R8) by `swap`: the domain's change decides on the record the
request read ahead (`RedisView.fresh`), then a compare-and-set script writes only if the record is
still the one decided on, and answers the record it found if not (the session book draws armed faults
at most once, so a retry is safe). A transition that changes nothing writes nothing. Ended sessions go
to the key's capped history list in the same script: the record and the history share the key's hash tag.
Within one worker, transactions of one key queue on an `asyncio.Lock`, so only workers contend in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence

from mockserver.domain import KeyRecord, Session
from mockserver.domain.store import HISTORY_LIMIT, Change, Ended, T
from mockserver.store.redis.codecs import decode_ended, decode_record, encode_ended, encode_record
from mockserver.store.redis.transaction import swap
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Names, Raw, Script, Wire, answering, new_token

RECORD, HISTORY = "record", "history"  # a key's names: `{<namespace>:<key>}:record` and `...:history`

RECORD_TURN = "turn"  # `{<namespace>:<key>}:turn`: the worker whose write goes next after a conflict
TURN_MS = 2  # how long a turn is held at most: 2 workers on the mix served 4,100-4,300 req/s at 1-2 ms, 2,700 at 10-50

_SWAP = Script(f"""
local turn = redis.call('GET', KEYS[3])
local current = redis.call('GET', KEYS[1])
local same
if ARGV[1] == '1' then same = current == ARGV[2] else same = not current end
if not same or (turn and turn ~= ARGV[6]) then
  if not turn then redis.call('SET', KEYS[3], ARGV[6], 'PX', {TURN_MS}) end
  return {{0, current}}
end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[4]) else redis.call('DEL', KEYS[1]) end
if turn then redis.call('DEL', KEYS[3]) end
if #ARGV > 6 then
  for i = 7, #ARGV do redis.call('LPUSH', KEYS[2], ARGV[i]) end
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
end
return {{1}}
""")
"""KEYS: the record, its capped history, its turn. ARGV: whether the record was there, what it held, whether
to set it, its new value, the history's cap, the writing worker's id, entries to push. Answers {1} or
{0, what the record holds now}. A worker whose write met a conflict takes the key's turn (if nobody holds
it): other workers' writes are refused until its next write clears it, or `TURN_MS` passes. Without it a
worker whose queue of one key writes back to back (each write sent as the last one is answered) would
win every race against another worker's retry, which then meets `StoreBusy`."""


class RedisStore:
    """A `SessionStore` in Redis, shared by every process that uses the same server, db and namespace.

    Each key keeps its last `history_limit` ended sessions, stamped with the wall time (`stamp`) they
    ended at; the history of every key is theirs merged, newest first, `history_limit` at most.
    """

    def __init__(
        self,
        wire: Wire,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        history_limit: int = HISTORY_LIMIT,
        view: RedisView | None = None,
        stamp: Callable[[], float] = time.time,
    ) -> None:
        self.wire = wire
        self.names = Names(namespace)
        self.history_limit = history_limit
        self.view = view or RedisView(wire, namespace=namespace)
        self.stamp = stamp
        self.worker = new_token()  # this worker's id in a key's turn
        self._queues: dict[tuple[asyncio.AbstractEventLoop, str], tuple[asyncio.Lock, list[int]]] = {}

    def __repr__(self) -> str:
        return f"RedisStore(namespace={self.names.namespace!r})"

    async def transact(self, key: str, change: Change[T], ended: Ended[T] = lambda result: ()) -> T:
        """Apply `change` to the key's record atomically (R8) and record what it ended, in one script."""
        name, listing, turn = (self.names.of_key(key, what) for what in (RECORD, HISTORY, RECORD_TURN))

        async def decide(raw: Raw) -> tuple[tuple[str | None, Sequence[str]] | None, T]:
            before = decode_record(raw)
            new, result = await change(before)
            at = self.stamp()
            pushed = [encode_ended(session, at) for session in ended(result)]
            if not pushed and (new == before or (raw is None and new.empty)):
                return None, result  # nothing changes (an empty record is not stored): no write, nothing to encode
            return (None if new.empty else encode_record(new), pushed), result

        async def write(raw: Raw, writes: tuple[str | None, Sequence[str]]) -> tuple[bool, Raw]:
            value, pushed = writes
            present = ("0", "") if raw is None else ("1", raw)
            args = [*present, *(("0", "") if value is None else ("1", value)), self.history_limit, self.worker, *pushed]
            done, *found = await self.wire.run(_SWAP, [name, listing, turn], args)
            if done:
                self.view.wrote(name, value)
            return bool(done), found[0] if found else None

        with answering(f"transaction on {name}"):
            async with self._queued(name):
                ahead = self.view.ahead(name)
                raw = ahead[0] if ahead is not None else (await self.wire.call(["GET", name]))[0]
                return await swap(name, raw, decide, write)

    @contextlib.asynccontextmanager
    async def _queued(self, name: str) -> AsyncIterator[None]:
        """One transaction of `name` at a time in this loop: the others wait here, not in Redis's conflicts."""
        queue = (asyncio.get_running_loop(), name)
        lock, users = self._queues.get(queue) or self._queues.setdefault(queue, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._queues[queue]

    async def record(self, key: str) -> KeyRecord:
        with answering("reading a session"):
            (raw,) = await self.wire.call(["GET", self.names.of_key(key, RECORD)])
        return decode_record(raw)

    async def keys(self) -> tuple[str, ...]:
        with answering("listing sessions"):
            names = await self.wire.scan(self.names.of_key("*", RECORD))
        return tuple(sorted(self.names.key_of(name, RECORD) for name in names))

    async def reset(self, key: str | None = None) -> None:
        """Forget sessions and history (of one key or all); the clock and the admin state stay."""
        with answering("reset"):
            if key is None:
                names: list[bytes | str] = [*await self.wire.scan(self.names.of_key("*", "*"))]
            else:
                names = [self.names.of_key(key, RECORD), self.names.of_key(key, HISTORY)]
            if names:
                await self.wire.call(*(["DEL", name] for name in names))

    async def history(self, key: str | None = None, limit: int | None = None) -> tuple[Session, ...]:
        """Ended sessions, newest first: one key's list, or every key's merged by the time they ended."""
        last = self.history_limit if limit is None else min(limit, self.history_limit)
        with answering("reading the history"):
            if key is None:
                names: list[bytes | str] = [*await self.wire.scan(self.names.of_key("*", HISTORY))]
            else:
                names = [self.names.of_key(key, HISTORY)]
            lists = await self.wire.call(*(["LRANGE", name, 0, last - 1] for name in names)) if names else []
        ended = heapq.merge(*([decode_ended(raw) for raw in listed] for listed in lists), key=_at, reverse=True)
        return tuple(session for _, session in itertools.islice(ended, last))


def _at(entry: tuple[float, Session]) -> float:
    return entry[0]
