"""`RedisView`: a worker's snapshot of the rarely changed admin state (one hash, caught up only when its
generation moves) and the record of the key a request names, read ahead in the same round trip."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import redis

from mockserver.store.errors import StoreUnavailable
from mockserver.store.redis.transaction import swap
from mockserver.store.redis.wire import (
    DEFAULT_NAMESPACE,
    GENERATION,
    Names,
    Raw,
    Script,
    Wire,
    answering,
    new_token,
    text,
)

R = TypeVar("R")

LOG = "admin-log"  # `{<namespace>}:admin-log`: the admin fields written, in order, the last `LOG_KEPT` of them
LOG_KEPT = 1024

_NUMBERED = """
local function numbered(generation)
  local epoch, count = string.match(generation, '^(.*):(%d+)$')
  if epoch then return epoch, tonumber(count) end
  return generation, 0
end
"""
"""A generation is `<epoch>:<count>`: the epoch is drawn when the hash gets its first generation (a new or
flushed store), the count is how many fields were written since (a token of another form counts 0)."""

_SET_FIELD = Script(
    _NUMBERED
    + f"""
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if current ~= ARGV[3] then return {{0, current}} end
elseif current then return {{0, current}} end
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[5]) else redis.call('HDEL', KEYS[1], ARGV[1]) end
local previous = redis.call('HGET', KEYS[1], 'generation')
local epoch, count = ARGV[6], 0
if previous then epoch, count = numbered(previous) end
local generation = epoch .. ':' .. (count + 1)
redis.call('HSET', KEYS[1], 'generation', generation)
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -{LOG_KEPT}, -1)
return {{1, previous, generation}}
"""
)
"""KEYS: the admin hash, its log. ARGV: the field, whether it was there, what it held, whether to set it, its new
value, an epoch (for a hash without a generation). Counts the generation up and logs the field. Answers {1, the
generation it replaced, the new one} or {0, what the field holds now}."""

_CATCH_UP = Script(
    _NUMBERED
    + """
local generation = redis.call('HGET', KEYS[1], 'generation')
if not generation then
  generation = ARGV[2] .. ':0'
  redis.call('HSET', KEYS[1], 'generation', generation)
end
if ARGV[1] ~= '' then
  local epoch, count = numbered(generation)
  local mine, known = numbered(ARGV[1])
  local behind = count - known
  if mine == epoch and behind >= 0 and behind <= redis.call('LLEN', KEYS[2]) then
    local reply = {generation, 1}
    if behind > 0 then
      local names = redis.call('LRANGE', KEYS[2], -behind, -1)
      local values = redis.call('HMGET', KEYS[1], unpack(names))
      for i = 1, #names do
        reply[#reply + 1] = names[i]
        reply[#reply + 1] = values[i]
      end
    end
    return reply
  end
end
local reply = {generation, 0}
for _, item in ipairs(redis.call('HGETALL', KEYS[1])) do reply[#reply + 1] = item end
return reply
"""
)
"""KEYS: the admin hash, its log. ARGV: the generation a snapshot holds ('' for none), an epoch (for a hash without
a generation: a new or flushed store). Answers {the generation, 1, each field written since the snapshot's and
its value (nil: deleted)} while the log still names every one of them, else {the generation, 0, the whole hash}."""


@dataclass
class _Request:
    """What one request knows of its key's record (read ahead by `fresh`, then what its transactions left), or
    why the store could not be read."""

    view: RedisView
    name: str | None
    epoch: int  # the view's count of its own record writes when the request last learnt the record
    raw: Raw = None
    ahead: bool = False
    failure: str | None = None


_REQUEST: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("morpheus_store_request", default=None)


class RedisView:
    """This worker's snapshot of the admin hash (`{<namespace>}:admin`: faults, keys, automation, replies,
    the clock offset) and the record of the key a request names, read ahead.

    Every write of a field counts the hash's `generation` up and logs the field's name, in the same script. A
    request starts in `fresh(key)`, which sends `HGET generation` and `GET <key's record>` in one round trip
    (two single-key commands: cluster-safe); only if the generation is not the snapshot's it catches up (a
    second trip, after an admin change: the fields written since, or the whole hash if the log no longer
    names them all). Every `field` read is then a dict lookup. A
    request whose look failed raises `StoreUnavailable` at its first read of the admin state. The record
    read ahead serves the request's first try at its transaction (`ahead`): unless this worker has written
    the record since, as requests of one key queue in one worker (`RedisStore`), then that value serves.
    """

    reads_ahead = True

    def __init__(self, wire: Wire, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.wire = wire
        self.names = Names(namespace)
        self.admin = self.names.admin
        self.log = self.names.shared(LOG)
        self._token: Raw = None
        self._snapshot: dict[str, bytes] = {}
        self._epoch = 0  # this worker's record writes, counted
        self._open: dict[str, int] = {}  # records of open requests: how many requests read each ahead
        self._written: dict[str, tuple[int, Raw]] = {}  # what this worker last wrote to those records
        self._failed = 0  # requests under way whose look failed: while none, a field is read without asking
        wire.preload(_SET_FIELD)
        wire.preload(_CATCH_UP)

    def __repr__(self) -> str:
        return f"RedisView({len(self._snapshot)} fields)"

    def fresh(self, key: str | None = None) -> Fresh:
        """`async with view.fresh(key):` around one request; `await view.fresh()` loads the snapshot now."""
        return Fresh(self, None if key is None else self.names.of_key(key, "record"))

    async def look(self, name: str | None) -> Raw:
        """Read the token (and `name`), in one round trip; load the hash if the token moved. Returns the record."""
        commands: list[list[Any]] = [["HGET", self.admin, GENERATION]]
        if name is not None:
            commands.append(["GET", name])
        token, *ahead = await self.wire.call(*commands)
        if token is None or token != self._token:
            await self.load(since=self._token)
        return ahead[0] if ahead else None

    async def load(self, since: Raw = None) -> None:
        """The admin hash as the store holds it now, in one script: the fields written since generation `since`
        while the hash's log still names them all (a few, however many fields the hash holds: keys first used by
        `--accept-any-key` are one each), else the whole hash (given a first generation if it has none)."""
        generation, changes, *flat = await self.wire.run(_CATCH_UP, [self.admin, self.log], [since or "", new_token()])
        if not changes:
            self._snapshot = {}
        for i in range(0, len(flat), 2):
            name, value = flat[i].decode(), flat[i + 1]
            if value is None:
                self._snapshot.pop(name, None)
            else:
                self._snapshot[name] = value
        self._snapshot[GENERATION] = self._token = generation

    def field(self, name: str, what: str) -> Raw:
        """What the admin field `name` held at the last look (`what`: for the error if the look failed)."""
        if self._failed:
            request = _REQUEST.get()
            if request is not None and request.view is self and request.failure is not None:
                raise StoreUnavailable(f"the shared store failed ({what}): {request.failure}")
        return self._snapshot.get(name)

    async def fields(self) -> dict[str, bytes]:
        """The whole admin hash as the store holds it now (admin listings)."""
        await self.load()
        return self._snapshot

    async def update(self, name: str, decide: Callable[[Raw], tuple[str | None, R]]) -> R:
        """Compare-and-set the admin field `name`: `decide` its new value (None deletes it) on what the snapshot
        holds (no read trip), write it if the store holds that too, with a new generation token; on a
        conflict decide again on the store's value. A value that stays the same is not written.

        Raises:
            StoreBusy: every attempt met a conflict.
            StoreUnavailable: Redis failed.
        """

        async def decided(raw: Raw) -> tuple[tuple[str | None] | None, R]:
            new, result = decide(raw)
            return (None if new == (None if raw is None else text(raw)) else (new,)), result

        async def write(raw: Raw, value: tuple[str | None]) -> tuple[bool, Raw]:
            (new,) = value
            present = ("0", "") if raw is None else ("1", raw)
            args = [name, *present, *(("0", "") if new is None else ("1", new)), new_token()]
            done, found, *generation = await self.wire.run(_SET_FIELD, [self.admin, self.log], args)
            if done:
                self._wrote_field(name, new, generation[0], previous=found)
            return bool(done), found

        with answering(f"changing {name}"):
            return await swap(f"{self.admin} {name}", self._snapshot.get(name), decided, write)

    def _wrote_field(self, name: str, new: str | None, generation: bytes, previous: Raw) -> None:
        if new is None:
            self._snapshot.pop(name, None)
        else:
            self._snapshot[name] = new.encode()
        if previous == self._token:  # the snapshot was whole: it is still, under the new generation
            self._snapshot[GENERATION] = self._token = generation

    def ahead(self, name: str) -> tuple[Raw] | None:
        """The record `name` as this request knows it: as this worker wrote it since the request last learnt it
        (a request of the same key before it, or this request's own earlier transaction), else as the request
        read it ahead or its last transaction left it (`knew`), unless that failed (`spent`); None: nothing
        known (read it)."""
        request = self._request(name)
        if request is None:
            return None
        written = self._written.get(name)
        if written is not None and written[0] > request.epoch:
            return (written[1],)
        return (request.raw,) if request.ahead else None

    def knew(self, name: str, raw: Raw) -> None:
        """This request's transaction of record `name` left `raw` there (what it decided on, its write applied)."""
        request = self._request(name)
        if request is not None:
            request.raw, request.ahead, request.epoch = raw, True, self._epoch

    def spent(self, name: str) -> None:
        """This request's transaction of record `name` failed: what the request knew of it may be stale."""
        request = self._request(name)
        if request is not None:
            request.ahead = False

    def _request(self, name: str) -> _Request | None:
        """The request under way, if it read record `name` ahead from this view."""
        request = _REQUEST.get()
        return request if request is not None and request.view is self and request.name == name else None

    def wrote(self, name: str, raw: Raw) -> None:
        """This worker wrote record `name`: a request that read it ahead before starts from this value."""
        self._epoch += 1
        if name in self._open:
            self._written[name] = (self._epoch, raw)

    def opened(self, name: str) -> None:
        """A request reads record `name` ahead."""
        self._open[name] = self._open.get(name, 0) + 1

    def closed(self, name: str) -> None:
        """A request that read `name` ahead ended; with the last of them, what this worker wrote is forgotten."""
        left = self._open.pop(name) - 1
        if left:
            self._open[name] = left
        else:
            self._written.pop(name, None)


class Fresh:
    """One request's look at the store (`RedisView.fresh`): an async context manager, or awaited alone."""

    _reset: contextvars.Token[_Request | None]
    _request: _Request

    def __init__(self, view: RedisView, name: str | None) -> None:
        self.view, self.name = view, name

    def __await__(self) -> Generator[Any, None, None]:
        with answering("reading the admin state"):
            yield from self.view.look(self.name).__await__()

    async def __aenter__(self) -> None:
        view, name = self.view, self.name
        request = self._request = _Request(view, name, view._epoch)
        self._reset = _REQUEST.set(request)
        if name is not None:
            view.opened(name)
        try:
            request.raw = await view.look(name)
            request.ahead = name is not None
        except (redis.RedisError, OSError) as error:  # every read of the admin state in this request fails
            request.failure = str(error) or type(error).__name__
            view._failed += 1
        except BaseException:  # cancelled while it looked: `__aexit__` will not run, so end the request here
            self._end()
            raise

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._end()

    def _end(self) -> None:
        _REQUEST.reset(self._reset)
        if self._request.failure is not None:
            self.view._failed -= 1
        if self.name is not None:
            self.view.closed(self.name)
