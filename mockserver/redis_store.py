"""Shared state in Redis, so several mock workers and hosts behave as one gateway.

`RedisStore` implements the domain's `SessionStore`: a key's record (its gateway row and the sessions
open on chain, one JSON value) is one Redis string, and every transition is atomic per key by
optimistic locking (WATCH/MULTI/EXEC, retried on a conflict with a growing pause, `ATTEMPTS` times at
most; the session book draws armed faults at most once, so a retry is safe). Ended sessions go to a
capped list in the same transaction. `RedisClock` shares the mock's clock offset, so expiry (R6)
follows the admin clock on every worker. The rest of the shared admin state (faults, keys, ids,
journal) is in `mockserver.redis_shared`.

Every Redis failure leaves this module as a `StoreError`, which the web layer answers in the
gateway's own shape; redis-py reconnects by itself once the server is back.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

import redis
from redis.client import Pipeline

from mockserver.domain import KeyRecord, Session, SessionKind, checked_time
from mockserver.domain.store import EMPTY, Change, Ended, T

DEFAULT_NAMESPACE = "morpheus-mock"
ATTEMPTS = 20  # optimistic transactions: conflicts survived before StoreBusy
PAUSE = 0.001  # seconds before the first retry; doubled each time up to PAUSE_MAX
PAUSE_MAX = 0.032
R = TypeVar("R")


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

    def __init__(self, client: redis.Redis, *, namespace: str = DEFAULT_NAMESPACE, history_limit: int = 1000) -> None:
        self.client = client
        self.namespace = namespace
        self.history_limit = history_limit

    def __repr__(self) -> str:
        return f"RedisStore(namespace={self.namespace!r})"

    def _active(self, key: str) -> str:
        return f"{self.namespace}:active:{key}"

    @property
    def _history(self) -> str:
        return f"{self.namespace}:history"

    def transact(self, key: str, change: Change[T], ended: Ended[T] = lambda result: ()) -> T:
        """Apply `change` to the key's record atomically (R8) and record what it ended, in one MULTI/EXEC."""
        name = self._active(key)

        def decide(pipe: Pipeline) -> tuple[Callable[[Pipeline], None], T]:
            new, result = change(decode_record(pipe.get(name)))

            def write(pipe: Pipeline) -> None:
                if new.empty:
                    pipe.delete(name)
                else:
                    pipe.set(name, encode_record(new))
                self._push_history(pipe, ended(result))

            return write, result

        return optimistic(self.client, [name], decide)

    def _push_history(self, pipe: Pipeline, sessions: Iterable[Session]) -> None:
        encoded = [encode(session) for session in sessions]
        if encoded:
            pipe.lpush(self._history, *encoded)
            pipe.ltrim(self._history, 0, self.history_limit - 1)

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
            self._push_history(pipe, [session])
            pipe.execute()


class RedisClock:
    """The system clock plus an offset kept in Redis: setting or advancing it moves every worker's clock.

    It keeps the bounds of every clock (`checked_time`); a move outside them changes nothing.
    """

    def __init__(
        self, client: redis.Redis, *, namespace: str = DEFAULT_NAMESPACE, source: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.name = f"{namespace}:clock-offset"
        self.source = source

    def __repr__(self) -> str:
        return f"RedisClock({self.name!r})"

    def now(self) -> float:
        with answering("reading the clock"):
            return self.source() + float(self.client.get(self.name) or 0.0)

    def set(self, t: float) -> float:
        offset = checked_time(t) - self.source()
        with answering("setting the clock"):
            self.client.set(self.name, repr(offset))
        return self.now()

    def advance(self, seconds: float) -> float:
        def decide(pipe: Pipeline) -> tuple[Callable[[Pipeline], Any], None]:
            target = checked_time(self.source() + float(pipe.get(self.name) or 0.0) + seconds)
            offset = target - self.source()
            return (lambda pipe: pipe.set(self.name, repr(offset))), None

        optimistic(self.client, [self.name], decide)
        return self.now()
