"""Shared state in Redis, so several mock workers and hosts behave as one gateway.

`RedisStore` implements the domain's `SessionStore`: a key's record (its gateway row and the sessions
open on chain, one JSON value) is one Redis string, and
every transition is atomic per key by optimistic locking (WATCH/MULTI/EXEC, retried on a conflict;
the session book draws armed faults at most once, so a retry is safe). Ended sessions go to a capped
list. `RedisClock` shares the mock's clock offset, so expiry (R6) follows the admin clock on every
worker. Faults, admin-added keys and the request journal stay per worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import redis

from mockserver.domain import KeyRecord, Session, SessionKind
from mockserver.domain.store import EMPTY, Change, T

DEFAULT_NAMESPACE = "morpheus-mock"


class StoreUnavailable(Exception):
    """The Redis server cannot be reached or used; the message says where and why."""


def encode(session: Session) -> str:
    return json.dumps({**asdict(session), "kind": str(session.kind)})


def decode(raw: bytes | str | None) -> Session | None:
    if raw is None:
        return None
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
    """A client for `redis://HOST:PORT/N`, checked with a PING so that a wrong URL fails at start."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
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

    def transact(self, key: str, change: Change[T]) -> T:
        """Apply `change` to the key's record atomically (R8): WATCH, read, compute, MULTI/EXEC; retry on conflict."""
        name = self._active(key)
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(name)  # type: ignore[no-untyped-call]
                    new, result = change(decode_record(pipe.get(name)))
                    pipe.multi()
                    if new.empty:
                        pipe.delete(name)
                    else:
                        pipe.set(name, encode_record(new))
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another worker changed this key meanwhile: decide again on its new state

    def record(self, key: str) -> KeyRecord:
        return decode_record(self.client.get(self._active(key)))

    def active(self, key: str) -> Session | None:
        active: Session | None = self.record(key).active
        return active

    def keys(self) -> tuple[str, ...]:
        prefix = self._active("")
        return tuple(sorted(name.decode().removeprefix(prefix) for name in self.client.scan_iter(match=f"{prefix}*")))

    def reset(self, key: str | None = None) -> None:
        if key is None:
            names = list(self.client.scan_iter(match=f"{self.namespace}:*"))
            if names:
                self.client.delete(*names)
            return
        self._rewrite_history(lambda session: session.key != key, also_delete=self._active(key))

    def _rewrite_history(self, keep: Callable[[Session], bool], *, also_delete: str) -> None:
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self._history)  # type: ignore[no-untyped-call]
                    kept = [raw for raw in pipe.lrange(self._history, 0, -1) if keep(_session(raw))]
                    pipe.multi()
                    pipe.delete(self._history, also_delete)
                    if kept:
                        pipe.rpush(self._history, *kept)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def history(self, key: str | None = None, limit: int | None = None) -> tuple[Session, ...]:
        ended = [_session(raw) for raw in self.client.lrange(self._history, 0, -1)]
        chosen = [session for session in ended if key is None or session.key == key]
        return tuple(chosen[:limit])

    def record_ended(self, session: Session) -> None:
        with self.client.pipeline() as pipe:
            pipe.lpush(self._history, encode(session))
            pipe.ltrim(self._history, 0, self.history_limit - 1)
            pipe.execute()


def _session(raw: Any) -> Session:
    session = decode(raw)
    assert session is not None
    return session


class RedisClock:
    """The system clock plus an offset kept in Redis: setting or advancing it moves every worker's clock."""

    def __init__(
        self, client: redis.Redis, *, namespace: str = DEFAULT_NAMESPACE, source: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.name = f"{namespace}:clock-offset"
        self.source = source

    def now(self) -> float:
        return self.source() + float(self.client.get(self.name) or 0.0)

    def set(self, t: float) -> float:
        self.client.set(self.name, repr(t - self.source()))
        return self.now()

    def advance(self, seconds: float) -> float:
        self.client.incrbyfloat(self.name, seconds)
        return self.now()
