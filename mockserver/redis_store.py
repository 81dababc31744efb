"""Shared state in Redis, so several mock workers and hosts behave as one gateway.

`RedisStore` implements the domain's `SessionStore`: a key's record (its gateway row and the sessions
open on chain, one JSON value) is one Redis string, and every transition is atomic per key by
optimistic locking: one GET, then one Lua script (`swap`) that writes only if the value is still the
one read, retried on a conflict with a growing pause, `ATTEMPTS` times at most (the session book
draws armed faults at most once, so a retry is safe). Ended sessions go to a capped list in the same
script. `RedisClock` shares the mock's clock offset, so expiry (R6) follows the admin clock on every
worker. The rest of the shared admin state (faults, keys, ids, journal) is in `mockserver.redis_shared`.

`RedisView` saves the round trips of reading admin state that rarely changes (faults, keys, the
clock offset): every write of it sets a new generation token in the same atomic step, a request
reads the token once (`fresh`), and within requests a value read under the current token is reused.

Every Redis failure leaves this module as a `StoreError`, which the web layer answers in the
gateway's own shape; redis-py reconnects by itself once the server is back.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.connection import Connection

from mockserver.domain import KeyRecord, Session, SessionKind, checked_time
from mockserver.domain.store import EMPTY, Change, Ended, T

DEFAULT_NAMESPACE = "morpheus-mock"
GENERATION = "generation"  # under the namespace: the token every write of the admin state renews
RECORDS = "active:"  # under the namespace, + a key: the key's record (`RedisStore`)
ATTEMPTS = 20  # optimistic transactions: conflicts survived before StoreBusy
PAUSE = 0.001  # seconds before the first retry; doubled each time up to PAUSE_MAX
PAUSE_MAX = 0.032
R = TypeVar("R")
Raw = bytes | str | None  # what redis-py answers for a string that may be missing


class StoreError(Exception):
    """Root of every error of the shared store."""


class StoreUnavailable(StoreError):
    """The Redis server cannot be reached or used; the message says where and why."""


class StoreBusy(StoreError):
    """An optimistic transaction met a conflict on every attempt."""


@contextlib.contextmanager
def answering(what: str) -> Iterator[None]:
    """Turn redis-py's failures into `StoreUnavailable` that names what failed."""
    try:
        yield
    except redis.RedisError as error:
        raise StoreUnavailable(f"the shared store failed ({what}): {error}") from None


def optimistic(
    client: redis.Redis, names: Sequence[str], decide: Callable[[Pipeline], tuple[Callable[[Pipeline], Any], R]]
) -> R:
    """WATCH `names`, `decide` on what they hold, queue its writes in MULTI and EXEC; retry on a conflict.

    Raises:
        StoreBusy: every one of `ATTEMPTS` attempts met a conflicting write.
        StoreUnavailable: Redis failed.
    """
    with answering(f"transaction on {names[0]}"), client.pipeline() as pipe:
        for attempt in range(ATTEMPTS):
            try:
                pipe.watch(*names)  # type: ignore[no-untyped-call]
                write, result = decide(pipe)
                pipe.multi()
                write(pipe)
                pipe.execute()
                return result
            except redis.WatchError:
                time.sleep(min(PAUSE * 2**attempt, PAUSE_MAX))  # another worker changed it: decide again
    raise StoreBusy(f"{names[0]} changed under every one of {ATTEMPTS} attempts; try again")


_SWAP = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then return 0 end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[4]) else redis.call('DEL', KEYS[1]) end
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5]) end
if #ARGV > 6 then
  for i = 7, #ARGV do redis.call('LPUSH', KEYS[2], ARGV[i]) end
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[6]) - 1)
end
return 1
"""
"""KEYS: the name, a capped list, the generation. ARGV: whether the name was there, what it held, whether
to set it, its new value, a new generation token ('' to leave it), the list's cap, entries to push."""


@dataclass(frozen=True)
class Swap:
    """What `swap` writes if the name still holds what was read: its new value (None deletes it)."""

    value: str | None
    pushed: Sequence[str] = ()  # entries for the capped list, pushed in this order (newest last)
    touch: bool = False  # a new generation token: every worker's `RedisView` reads the name again


@dataclass(frozen=True)
class Target:
    """Where `swap` writes: the name, the capped list (and its cap) and the generation token's name."""

    name: str
    listing: str
    cap: int
    generation: str


def swap(
    wire: Wire, target: Target, decide: Callable[[Raw], tuple[Swap | None, R]], ahead: tuple[Raw] | None = None
) -> R:
    """Read `target.name`, `decide` what to write (None: nothing), write it if the name is unchanged; retry if not.

    Two round trips (GET, then the script by its hash, sent whole if the server forgot it) instead of
    WATCH, GET and MULTI/EXEC;
    one if the name was read `ahead` (`RedisView.ahead`): a stale value only costs a retry, at once.

    Raises:
        StoreBusy: every one of `ATTEMPTS` attempts met a conflicting write.
        StoreUnavailable: Redis failed.
    """
    with answering(f"transaction on {target.name}"):
        for attempt in range(ATTEMPTS):
            first = attempt == 0 and ahead is not None
            raw = ahead[0] if ahead is not None and first else wire.call(["GET", target.name])[0]
            writes, result = decide(raw)
            if writes is None:
                return result
            token = new_token() if writes.touch else ""
            present = ("0", "") if raw is None else ("1", raw)
            value = ("0", "") if writes.value is None else ("1", writes.value)
            args = [*present, *value, token, target.cap, *writes.pushed]
            if wire.swap([target.name, target.listing, target.generation], args):
                return result
            if not first:  # a value read ahead may be stale without anyone contending: no pause then
                time.sleep(min(PAUSE * 2**attempt, PAUSE_MAX))  # another worker changed it: decide again
    raise StoreBusy(f"{target.name} changed under every one of {ATTEMPTS} attempts; try again")


class Wire:
    """The hot path's commands on a connection each thread keeps (redis-py's client checks one out of its
    pool and back for every command, which was two thirds of a GET's CPU here).

    A connection that fails is dropped (the next call opens a new one); a forked process, or a new pool
    on the client (a test's way of breaking it), gets a connection of its own. Errors are redis-py's.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.swap_script: Script = client.register_script(_SWAP)  # its hash is computed once
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Wire({self.client!r})"

    def call(self, *commands: Sequence[Any]) -> list[Any]:
        """Send `commands` in one round trip and return their answers; an error answer raises."""
        pool, pid = self.client.connection_pool, os.getpid()
        held: tuple[Any, int, Connection] | None = getattr(self._local, "held", None)
        if held is None or held[0] is not pool or held[1] != pid:  # a forked worker opens its own
            held = (pool, pid, pool.get_connection())
            self._local.held = held
        connection = held[2]
        try:
            connection.send_packed_command(connection.pack_commands(commands))  # type: ignore[no-untyped-call]
            replies = [_reply(connection) for _ in commands]  # every answer is read, so none is left behind
        except BaseException:
            self._local.held = None  # a connection whose answers may be out of step is never used again
            connection.disconnect()  # type: ignore[no-untyped-call]
            raise
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return replies

    def swap(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """`_SWAP` by its hash; by its text (which Redis then keeps) if the server has forgotten it."""
        script = self.swap_script
        try:
            return self.call(["EVALSHA", script.sha, len(keys), *keys, *args])[0]
        except redis.exceptions.NoScriptError:
            return self.call(["EVAL", script.script, len(keys), *keys, *args])[0]


def _reply(connection: Connection) -> Any:
    """One answer; an error answer is returned (as its exception), not raised."""
    try:
        return connection.read_response()
    except redis.ResponseError as error:
        return error


def new_token() -> str:
    return secrets.token_hex(8)


class RedisView:
    """This worker's reads of the rarely changed admin state (faults, keys, the clock offset), kept while
    the store's generation token stays the same, and the record of the key a request names, read ahead.

    Every write of that state sets `<namespace>:generation` to a new random token in the same atomic
    step (`touch`). A request starts in `fresh`, which reads the token (and its key's record) in one
    round trip: if the token changed (or the store cannot tell), what was kept is dropped. Within
    requests, `read` answers from what was kept under the current token; outside any request (and
    while the token is unknown) it asks Redis. The record read ahead serves the request's first try
    at its transaction (`ahead`), which writes only if the record is still the one read.
    """

    reads_ahead = True

    def __init__(self, client: redis.Redis, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.client = client
        self.wire = Wire(client)
        self.generation = f"{namespace}:{GENERATION}"
        self.records = f"{namespace}:{RECORDS}"
        self._token: Raw = None
        self._kept: dict[str, Raw] = {}
        self._ahead: dict[str, Raw] = {}
        self._open = 0  # requests in `fresh`
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisView({len(self._kept)} kept)"

    @contextlib.contextmanager
    def fresh(self, key: str | None = None) -> Iterator[None]:
        """One request (for `key`'s record): read the token once; reads within it may reuse what was kept."""
        names = [self.generation] if key is None else [self.generation, self.records + key]
        try:
            token, *ahead = self.wire.call(["MGET", *names])[0]
            if token is None:  # no write has set one yet (a fresh or flushed store): this request reads
                self.wire.call(["SET", self.generation, new_token(), "NX"])  # through, the next ones keep
        except redis.RedisError:
            token, ahead = None, []  # every read asks Redis, and fails there with its own message
        with self._lock:
            if token is None or token != self._token:
                self._kept = {}
            self._token = token
            self._open += 1
            if ahead:
                self._ahead[names[1]] = ahead[0]
        try:
            yield
        finally:
            with self._lock:
                self._open -= 1
                if ahead:
                    self._ahead.pop(names[1], None)

    def ahead(self, name: str) -> tuple[Raw] | None:
        """The record `name` as a request found it when it started, once (None: not read ahead)."""
        with self._lock:
            if name in self._ahead:
                return (self._ahead.pop(name),)
        return None

    def read(self, name: str) -> Raw:
        """What `name` holds: kept under the current token, or read from Redis (and kept, within a request)."""
        token = self._token
        if not self._open or token is None:
            raw: Raw = self.wire.call(["GET", name])[0]
            return raw
        try:
            return self._kept[name]
        except KeyError:
            pass
        now, raw = self.wire.call(["MGET", self.generation, name])[0]  # the value and its token, atomically
        with self._lock:
            if now == self._token:
                self._kept[name] = raw
        return raw

    def touch(self, pipe: Pipeline) -> None:
        """Queue a new generation token with a write of the admin state: every worker reads it again."""
        pipe.set(self.generation, new_token())

    def changed(self) -> None:
        """This worker wrote the state: keep nothing until the next request reads the new token."""
        with self._lock:
            self._token = None
            self._kept = {}


def encode(session: Session) -> str:
    return json.dumps({**asdict(session), "kind": str(session.kind)})


def decode(raw: bytes | str | None) -> Session | None:
    return None if raw is None else _session(raw)


def _session(raw: bytes | str) -> Session:
    return _from_fields(json.loads(raw))


def _from_fields(fields: dict[str, Any]) -> Session:
    return Session(**{**fields, "kind": SessionKind(fields["kind"])})


def encode_record(record: KeyRecord) -> str:
    active = None if record.active is None else {**asdict(record.active), "kind": str(record.active.kind)}
    chain = [{**asdict(session), "kind": str(session.kind)} for session in record.chain]
    return json.dumps({"active": active, "chain": chain, "synced_at": record.synced_at})


def decode_record(raw: bytes | str | None) -> KeyRecord:
    if raw is None:
        return EMPTY
    fields = json.loads(raw)
    active = None if fields["active"] is None else _from_fields(fields["active"])
    return KeyRecord(active, tuple(_from_fields(s) for s in fields["chain"]), fields["synced_at"])


def connect(url: str) -> redis.Redis:
    """A client for `redis://HOST:PORT/N`, checked with a PING so that a wrong URL fails at start.

    Timeouts are short: a store that stopped answering costs a request seconds, not minutes.
    """
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        client.ping()
    except (redis.RedisError, ValueError) as error:
        raise StoreUnavailable(f"cannot use the store {url}: {error}") from None
    return client


class RedisStore:
    """A `SessionStore` in Redis, shared by every process that uses the same server, db and namespace."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        history_limit: int = 1000,
        view: RedisView | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.history_limit = history_limit
        self.view = view or RedisView(client, namespace=namespace)

    def __repr__(self) -> str:
        return f"RedisStore(namespace={self.namespace!r})"

    def _active(self, key: str) -> str:
        return f"{self.namespace}:{RECORDS}{key}"

    @property
    def _history(self) -> str:
        return f"{self.namespace}:history"

    def transact(self, key: str, change: Change[T], ended: Ended[T] = lambda result: ()) -> T:
        """Apply `change` to the key's record atomically (R8) and record what it ended, in one script."""

        def decide(raw: Raw) -> tuple[Swap, T]:
            new, result = change(decode_record(raw))
            pushed = [encode(session) for session in ended(result)]
            return Swap(None if new.empty else encode_record(new), pushed), result

        name = self._active(key)
        target = Target(name, self._history, self.history_limit, self.view.generation)
        return swap(self.view.wire, target, decide, self.view.ahead(name))

    def record(self, key: str) -> KeyRecord:
        with answering("reading a session"):
            return decode_record(self.client.get(self._active(key)))

    def active(self, key: str) -> Session | None:
        active: Session | None = self.record(key).active
        return active

    def keys(self) -> tuple[str, ...]:
        prefix = self._active("")
        with answering("listing sessions"):
            names = self.client.scan_iter(match=f"{prefix}*")
            return tuple(sorted(name.decode().removeprefix(prefix) for name in names))

    def reset(self, key: str | None = None) -> None:
        """Forget sessions and history (of one key or all); the clock and the admin state stay."""
        if key is None:
            with answering("reset"):
                names = [*self.client.scan_iter(match=self._active("*")), self._history]
                self.client.delete(*names)
            return
        self._rewrite_history(lambda session: session.key != key, also_delete=self._active(key))

    def _rewrite_history(self, keep: Callable[[Session], bool], *, also_delete: str) -> None:
        def decide(pipe: Pipeline) -> tuple[Callable[[Pipeline], None], None]:
            kept = [raw for raw in pipe.lrange(self._history, 0, -1) if keep(_session(raw))]

            def write(pipe: Pipeline) -> None:
                pipe.delete(self._history, also_delete)
                if kept:
                    pipe.rpush(self._history, *kept)

            return write, None

        optimistic(self.client, [self._history], decide)

    def history(self, key: str | None = None, limit: int | None = None) -> tuple[Session, ...]:
        with answering("reading the history"):
            ended = [_session(raw) for raw in self.client.lrange(self._history, 0, -1)]
        chosen = [session for session in ended if key is None or session.key == key]
        return tuple(chosen[:limit])

    def record_ended(self, session: Session) -> None:
        with answering("recording an ended session"), self.client.pipeline() as pipe:
            pipe.lpush(self._history, encode(session))
            pipe.ltrim(self._history, 0, self.history_limit - 1)
            pipe.execute()


class RedisClock:
    """The system clock plus an offset kept in Redis: setting or advancing it moves every worker's clock.

    It keeps the bounds of every clock (`checked_time`); a move outside them changes nothing. The
    offset is read through `view`, so a request reads it from Redis at most once while it is unchanged.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        source: Callable[[], float] = time.time,
        view: RedisView | None = None,
    ) -> None:
        self.client = client
        self.name = f"{namespace}:clock-offset"
        self.source = source
        self.view = view or RedisView(client, namespace=namespace)

    def __repr__(self) -> str:
        return f"RedisClock({self.name!r})"

    def now(self) -> float:
        with answering("reading the clock"):
            return self.source() + float(self.view.read(self.name) or 0.0)

    def set(self, t: float) -> float:
        offset = checked_time(t) - self.source()
        with answering("setting the clock"), self.client.pipeline() as pipe:
            pipe.set(self.name, repr(offset))
            self.view.touch(pipe)
            pipe.execute()
        self.view.changed()
        return self.now()

    def advance(self, seconds: float) -> float:
        def decide(pipe: Pipeline) -> tuple[Callable[[Pipeline], Any], None]:
            target = checked_time(self.source() + float(pipe.get(self.name) or 0.0) + seconds)
            offset = target - self.source()

            def write(pipe: Pipeline) -> None:
                pipe.set(self.name, repr(offset))
                self.view.touch(pipe)

            return write, None

        optimistic(self.client, [self.name], decide)
        self.view.changed()
        return self.now()
