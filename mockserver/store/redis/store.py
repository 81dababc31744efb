"""`RedisStore`: the domain's `SessionStore` in Redis, shared by every worker that uses the same server.

A key's record (its gateway row and the sessions open on chain, one JSON value) is one Redis string,
and every transition is atomic per key (R8) by `swap`: the domain's change decides on the record the
request read ahead (`RedisView.fresh`), then a compare-and-set script writes only if the record is
still the one decided on, and answers the record it found if not (the session book draws armed faults
at most once, so a retry is safe). A transition that changes nothing writes nothing. Ended sessions go
to the key's capped history list in the same script: the record and the history share the key's hash tag.
Within one worker, transactions of one key decide one at a time, each chained behind the write in flight
(`RedisStore.transact`), so only workers contend in Redis; a key they contend for moves in batches, one
compare-and-set a batch (group commit, `RedisStore._together`), and the workers take turns: the one holding
a key's turn hands it to the one waiting, with the value it wrote (pub/sub, `Listener`), so a batch decides
on what the other worker wrote, not on a value it already replaced.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from mockserver.domain import KeyRecord, Session
from mockserver.domain.store import HISTORY_LIMIT, Change, Ended, T
from mockserver.store.redis.codecs import decode_ended, decode_record, encode_ended, encode_record
from mockserver.store.redis.listen import Listener
from mockserver.store.redis.transaction import ATTEMPTS, swap
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Names, Raw, Script, Wire, answering, new_token, text

RECORD, HISTORY = "record", "history"  # a key's names: `{<namespace>:<key>}:record` and `...:history`

RECORD_TURN = "turn"  # `{<namespace>:<key>}:turn`: the worker whose write goes next after a conflict
RECORD_NEXT = "next"  # `{<namespace>:<key>}:next`: the worker the turn is handed to when its holder writes
HAND = "hand"  # `{<namespace>}:hand:<worker>`: the channel a worker is handed turns on (`Listener`)
TURN_MS = 20  # how long a turn is held (or waited for) at most, when its worker neither writes nor hands it on

_HAND = f"""
local function hand(record, turn, next, me, channel)
  local waiter = redis.call('GET', next)
  if waiter then redis.call('DEL', next) end
  if not waiter or waiter == me then return false end
  redis.call('SET', turn, waiter, 'PX', {TURN_MS})
  local value = redis.call('GET', record)
  redis.call('PUBLISH', channel .. waiter, record .. '\\n' .. (value and '1' .. value or '0'))
  return true
end
"""
"""Hand a key's turn to the worker waiting next, if another: it holds the turn, and its channel gets the record's
name and value (`1<value>`, or `0`: none)."""

_SWAP = Script(
    _HAND
    + f"""
local turn = redis.call('GET', KEYS[3])
local current = redis.call('GET', KEYS[1])
local same
if ARGV[1] == '1' then same = current == ARGV[2] else same = not current end
if not same or (turn and turn ~= ARGV[6]) then
  if not turn then
    redis.call('SET', KEYS[3], ARGV[6], 'PX', {TURN_MS})
    turn = ARGV[6]
  elseif turn ~= ARGV[6] then
    redis.call('SET', KEYS[4], ARGV[6], 'PX', {TURN_MS})
  end
  return {{0, current, turn == ARGV[6] and 1 or 0}}
end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[4]) else redis.call('DEL', KEYS[1]) end
if #ARGV > 8 then
  for i = 9, #ARGV do redis.call('LPUSH', KEYS[2], ARGV[i]) end
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
end
if hand(KEYS[1], KEYS[3], KEYS[4], ARGV[6], ARGV[7]) then
  if ARGV[8] == '1' then redis.call('SET', KEYS[4], ARGV[6], 'PX', {TURN_MS}) end
  return {{1, 1}}
end
if turn then redis.call('DEL', KEYS[3]) end
return {{1, 0}}
"""
)
"""KEYS: the record, its capped history, its turn, who waits next. ARGV: whether the record was there, what it held,
whether to set it, its new value, the history's cap, the writing worker's id, the channels' prefix, whether it has
more to write, entries to push. Answers {1, whether it handed the turn to another worker} or {0, what the record
holds now, whether the writing worker holds the turn}. A worker whose write met a conflict takes the key's turn if
nobody holds it, else waits next: other workers' writes are refused while a turn is held, until its holder writes,
passes it (`_PASS`: its retry wrote nothing) or `TURN_MS` passes. The holder's write hands the turn to the worker
waiting next, with the value written (`_HAND`), and waits next itself if it has more to write: two workers writing
one key take turns, each deciding on what the other wrote, none on a stale value. Without turns a worker whose
transactions of one key write back to back (chained, `RedisStore.transact`) would win every race against another
worker's retry, which then meets `StoreBusy`."""

_WAIT = Script(f"""
local turn = redis.call('GET', KEYS[2])
if not turn or turn == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', {TURN_MS})
  return {{1, redis.call('GET', KEYS[1])}}
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', {TURN_MS})
return {{0}}
""")
"""KEYS: a record, its turn, who waits next. ARGV: a worker's id. Gives that worker the turn if nobody else holds
it: answers {1, the record}; else it waits next: answers {0}, and the holder's write hands it the turn."""

_PASS = (
    _HAND
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if not hand(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2]) then redis.call('DEL', KEYS[2]) end
return 1
"""
)
"""KEYS: a record, its turn, who waits next; ARGV: a worker's id, the channels' prefix. Ends the turn if that
worker holds it, handing it to whoever waits next (sent by its text: rare)."""


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
        self.channels = self.names.shared(f"{HAND}:")
        self.hands = Listener(wire, self.channels + self.worker, self._handed)
        wire.preload(_SWAP)
        wire.preload(_WAIT)
        self._queues: dict[tuple[asyncio.AbstractEventLoop, str], _Key] = {}

    def __repr__(self) -> str:
        return f"RedisStore(namespace={self.names.namespace!r})"

    async def transact(self, key: str, change: Change[T], ended: Ended[T] = lambda result: ()) -> T:
        """Apply `change` to the key's record atomically (R8) and record what it ended, in one script.

        The first try decides on this worker's tip of the record (what its last write sent leaves there, or
        what the request read ahead) and sends its compare-and-set without waiting, so the next transaction of
        the key decides at once, chained behind it on the one connection: a key is not one round trip at a
        time in a worker. A result is given once its write (or, for one that writes nothing, the write it
        decided after) is answered as applied; one that was not is tried again on the store's value, and
        from then on the key's transactions in this worker go in batches, one write in flight at a time
        (`_together`).
        """
        keys = name, *_ = self._names(key)
        known: list[Raw] = [None]  # what the record holds after the last decision (its write, if any, applied)

        async def decide(raw: Raw) -> tuple[_Writes | None, T]:
            before = decode_record(raw)
            new, result = await change(before)
            at = self.stamp()
            pushed = [encode_ended(session, at) for session in ended(result)]
            if not pushed and (new == before or (raw is None and new.empty)):
                known[0] = raw
                return None, result  # nothing changes (an empty record is not stored): no write, nothing to encode
            value = known[0] = None if new.empty else encode_record(new)
            return (value, pushed), result

        async def attempts() -> T:
            tried = not queue.contended
            if tried:
                async with queue.lock:
                    tip = queue.tip
                    chained = tip is not None and not tip.answer.done()
                    raw = tip.raw if tip is not None and chained else await self._base(name, tip, ahead=True)
                    writes, result = await decide(raw)
                    if writes is not None:
                        sent = self.wire.submit(_SWAP.by_hash(keys, self._arguments(raw, writes)))
                        tip = queue.tip = _Tip(writes[0], self._answer(queue, name, writes[0], sent))
                    elif not chained:
                        return result
                if tip is not None and (await asyncio.shield(tip.answer))[0]:
                    return result
                queue.contended = queue.racing = True  # another worker writes this key too: one write at a time
            return await self._together(queue, keys, decide, ATTEMPTS - tried)

        with answering(f"transaction on {name}"):
            queue = self._using(name)
            try:
                result = await attempts()
            except BaseException:
                self.view.spent(name)  # what the request read ahead may be stale: its next read reads
                raise
            finally:
                self._used(name, queue)
        self.view.knew(name, known[0])  # the request's next read or transaction starts from what this one left
        return result

    async def _together(self, queue: _Key, keys: Sequence[str], decide: _Decide[T], attempts: int) -> T:
        """A contended key's transaction, written with the others of its key in this worker (group commit).

        The transactions waiting when the key's lock comes free decide in turn, each on what the one before
        left, starting from what the store holds, and go in ONE compare-and-set: the record from where they
        started to where the last left it, every session they ended pushed in order. A conflict has them decide
        again, on what the script found, `attempts` times at most (`swap`). So a key that two workers write
        moves a batch a round trip, not one transaction. The first of them decides for all (`change` depends on
        its record only); one whose decision raised fails alone.
        """
        waiting = _Waiting(decide)
        queue.waiting.append(waiting)
        try:
            async with queue.lock:
                if not waiting.settled:
                    batch, queue.waiting = queue.waiting, []
                    try:
                        await self._commit(queue, keys, batch, attempts)
                    finally:
                        if queue.turn:  # taken (or handed), then nothing written: the other workers' go
                            queue.turn, queue.handed = False, None
                            self._pass(keys[0])
        finally:
            if waiting in queue.waiting:  # given up (cancelled) before it was decided
                queue.waiting.remove(waiting)
        return waiting.result()  # type: ignore[no-any-return]

    async def _commit(self, queue: _Key, keys: Sequence[str], batch: list[_Waiting], attempts: int) -> None:
        """Decide `batch` together and write what it leaves (`_together`); every one of it ends with an outcome,
        or, cancelled, goes back to wait for the key's lock."""

        async def decide(raw: Raw) -> tuple[_Writes | None, None]:
            value, pushed, written = raw, list[bytes](), None
            for waiting in [*batch]:
                try:
                    writes, waiting.decided = await waiting.decide(value)
                except Exception as error:  # that transaction's own failure, given to it alone
                    waiting.settled, waiting.error = True, error
                    batch.remove(waiting)
                    continue
                if writes is not None:
                    value = writes[0]
                    pushed.extend(writes[1])
                    written = (writes[0], pushed)
            return written, None

        async def write(raw: Raw, writes: _Writes) -> tuple[bool, Raw]:
            done, *found = await self.wire.run(_SWAP, keys, self._arguments(raw, writes, more=bool(queue.waiting)))
            queue.turn = not done and bool(found[1])
            queue.racing = not done or bool(found[0])  # another worker wrote the key, or waited for it
            if done:
                self.view.wrote(keys[0], writes[0])
                queue.tip = _Tip(writes[0], _applied())
                return True, None
            if not queue.turn and await self.hands.listening():  # another worker's turn: this one waits next
                handed = await self._handoff(queue)
                if handed is not None:
                    return False, handed[0]
            return False, found[0]

        try:
            await swap(keys[0], await self._start(queue, keys), decide, write, attempts=attempts)
        except Exception as error:  # the store's failure or StoreBusy: every one of them fails
            for waiting in batch:
                waiting.settled, waiting.error = True, error
        except BaseException:
            queue.waiting[:0] = [waiting for waiting in batch if not waiting.settled]
            raise
        else:
            for waiting in batch:
                waiting.settled = True

    def _arguments(self, raw: Raw, writes: _Writes, *, more: bool = False) -> list[Any]:
        """The `_SWAP` script's arguments: write `writes` if the record still holds `raw` (`more`: this worker has
        more of the key's transactions waiting)."""
        value, pushed = writes
        present = ("0", "") if raw is None else ("1", raw)
        written = ("0", "") if value is None else ("1", value)
        return [*present, *written, self.history_limit, self.worker, self.channels, "1" if more else "0", *pushed]

    def _names(self, key: str) -> tuple[str, ...]:
        """The names a transaction of `key` runs `_SWAP` on: its record, history, turn and who waits next."""
        return _names_of(self.names, key)

    async def _start(self, queue: _Key, keys: Sequence[str]) -> Raw:
        """What a contended batch decides on: the record as a turn handed to this worker left it; else, holding no
        turn while another worker races for the key, the turn asked for (`_WAIT`), given now with the record, or,
        while another worker holds it, handed with the record when that worker writes (`_handoff`); else (not
        racing, the turn held since a conflict, not handed in time, nobody listening) what `_base` gives."""
        if queue.handed is None and not queue.turn and queue.racing and await self.hands.listening():
            given, *found = await self.wire.run(_WAIT, [keys[0], keys[2], keys[3]], [self.worker])
            if given:
                queue.turn = True
                return found[0]  # type: ignore[no-any-return]
            handed = await self._handoff(queue)
        else:
            handed, queue.handed = queue.handed, None
        return handed[0] if handed is not None else await self._base(keys[0], queue.tip)

    async def _handoff(self, queue: _Key) -> tuple[Raw] | None:
        """The record as the worker that held the key's turn handed it to this one (`_handed`), waited for
        `TURN_MS` at most; None: not handed in time."""
        if queue.handed is None:
            loop = asyncio.get_running_loop()
            hand = queue.hand = loop.create_future()
            timer = loop.call_later(TURN_MS / 1000, _settle, hand)
            try:
                await hand
            finally:
                timer.cancel()
                queue.hand = None
        handed, queue.handed = queue.handed, None
        return handed

    def _handed(self, message: bytes) -> None:
        """Another worker handed this one a record's turn, with its value (`_HAND`): for the key's next batch here,
        at once if one waits for it (`_handoff`); passed on if none of the key's transactions is under way here."""
        name, _, value = message.partition(b"\n")
        record = text(name)
        queue = self._queues.get((asyncio.get_running_loop(), record))
        if queue is None:
            self._pass(record)
            return
        queue.handed, queue.turn = (value[1:] if value[:1] == b"1" else None,), True
        if queue.hand is not None:
            _settle(queue.hand)

    def _pass(self, record: str) -> None:
        """End this worker's turn of the key whose record is `record`, handing it to whoever waits next, without
        waiting (`_PASS`)."""
        keys = self._names(self.names.key_of(record, RECORD))
        self.wire.send(["EVAL", _PASS, 3, record, keys[2], keys[3], self.worker, self.channels])

    async def _base(self, name: str, tip: _Tip | None, *, ahead: bool = False) -> Raw:
        """What a try starts from when it does not chain behind a write in flight. A first try (`ahead`) takes
        the request's own look first (`RedisView.ahead`: what it read ahead, or what this worker wrote since),
        which is never older than a settled tip (a write sent before the look was applied before it); then
        what this worker's last write left (or, if it was not applied, what the record held instead); else the
        record as read now."""
        if ahead or tip is None:
            seen = self.view.ahead(name)
            if seen is not None:
                return seen[0]
        if tip is None:
            return await self._read(name)
        try:
            applied, found = await asyncio.shield(tip.answer)
        except (redis.RedisError, OSError):  # that write's line broke: read on the new one
            return await self._read(name)
        return tip.raw if applied else found[0] if found is not None else await self._read(name)

    async def _read(self, name: str) -> Raw:
        return (await self.wire.call(["GET", name]))[0]  # type: ignore[no-any-return]

    def _answer(
        self, queue: _Key, name: str, value: bytes | None, answer: asyncio.Future[list[Any]]
    ) -> asyncio.Future[_Answer]:
        """What a write sent (`answer`) did: applied; or not, with what the record held instead (unknown when
        the store had forgotten the script); or the line's failure."""
        settled: asyncio.Future[_Answer] = answer.get_loop().create_future()

        def settle(answer: asyncio.Future[list[Any]]) -> None:
            error = answer.exception()
            if error is not None:
                settled.set_exception(error)
                return
            (reply,) = answer.result()
            if isinstance(reply, redis.exceptions.NoScriptError):
                settled.set_result((False, None))
            elif isinstance(reply, redis.ResponseError):
                settled.set_exception(reply)
            elif reply[0]:
                self.view.wrote(name, value)
                settled.set_result((True, None))
            else:
                queue.turn = queue.turn or bool(reply[2])
                settled.set_result((False, (reply[1],)))

        answer.add_done_callback(settle)
        return settled

    def _using(self, name: str) -> _Key:
        """This loop's state of `name`, for one more transaction (until `_used`); forgotten with the last of them."""
        queue = (asyncio.get_running_loop(), name)
        state = self._queues.get(queue) or self._queues.setdefault(queue, _Key())
        state.users += 1
        return state

    def _used(self, name: str, state: _Key) -> None:
        state.users -= 1
        if not state.users:
            del self._queues[(asyncio.get_running_loop(), name)]
            if state.turn:  # handed to this worker after its last transaction of the key
                self._pass(name)

    async def record(self, key: str) -> KeyRecord:
        """The key's record: as the request knows it (`RedisView.ahead`: a chat's read after its transaction
        costs no round trip), else read now."""
        name = self.names.of_key(key, RECORD)
        known = self.view.ahead(name)
        if known is not None:
            return decode_record(known[0])
        with answering("reading a session"):
            (raw,) = await self.wire.call(["GET", name])
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


_Writes = tuple[bytes | None, Sequence[bytes]]
"""What a transaction writes: the record's new value (None: delete it), and the sessions it ended, encoded."""
_Decide = Callable[[Raw], Awaitable[tuple[_Writes | None, T]]]
"""A transaction's decision on what the record holds: what to write (None: nothing), and its result."""

_Answer = tuple[bool, tuple[Raw] | None]
"""Whether a write was applied; if not, what the record held instead (None: unknown)."""


@dataclass(frozen=True)
class _Tip:
    """What a key's record holds once this worker's last write sent is applied, and what became of it."""

    raw: Raw
    answer: asyncio.Future[_Answer]


@dataclass(eq=False)
class _Waiting:
    """A contended transaction, waiting for its key's lock to be decided and written in a batch (`_together`)."""

    decide: _Decide[Any]
    decided: Any = None  # its result, once its batch's write is applied
    settled: bool = False
    error: Exception | None = None  # why it failed (its own decision, or its batch's write)

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.decided


@dataclass
class _Key:
    """One key's transactions in one loop: one decides at a time (`lock`); `tip` is what they start from. Once a
    write was not applied (`contended`: another worker writes the key too), they go in batches (`waiting`), each
    batch's write answered before the next batch decides, as long as any of them is under way: the key's turn
    keeps that fair."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    tip: _Tip | None = None
    contended: bool = False
    turn: bool = False  # this worker holds the key's turn (its write met a conflict, or it was handed the turn)
    racing: bool = False  # the last write met another worker's, or handed it the turn: the next asks for the turn
    handed: tuple[Raw] | None = None  # the record as another worker handed this one its turn (`_handed`)
    hand: asyncio.Future[None] | None = None  # a batch waiting to be handed the turn
    waiting: list[_Waiting] = field(default_factory=list)  # contended transactions not yet in a batch


@functools.lru_cache(maxsize=1024)
def _names_of(names: Names, key: str) -> tuple[str, ...]:
    """`RedisStore._names`, made once for the keys in use (four names a transaction)."""
    return tuple(names.of_key(key, what) for what in (RECORD, HISTORY, RECORD_TURN, RECORD_NEXT))


def _applied() -> asyncio.Future[_Answer]:
    future: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
    future.set_result((True, None))
    return future


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _at(entry: tuple[float, Session]) -> float:
    return entry[0]
