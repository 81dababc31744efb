"""`RedisStore`: the domain's `SessionStore` in Redis, shared by every worker that uses the same server.

A key's record (its gateway row and the sessions open on chain, one JSON value) is one Redis string,
and every transition is atomic per key (R8) by `swap`: one GET, then a compare-and-set script that
writes only if the value is still the one read (the session book draws armed faults at most once, so
a retry is safe). A transition that changes nothing writes nothing. Ended sessions go to the key's
capped history list in the same script: the record and the history share the key's hash tag.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

import redis

from mockserver.domain import KeyRecord, Session
from mockserver.domain.store import HISTORY_LIMIT, Change, Ended, T
from mockserver.store.redis.codecs import decode_ended, decode_record, encode_ended, encode_record
from mockserver.store.redis.transaction import Swap, Target, swap
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Names, Raw, answering, delete, text

RECORD, HISTORY = "record", "history"  # a key's names: `{<namespace>:<key>}:record` and `...:history`


class RedisStore:
    """A `SessionStore` in Redis, shared by every process that uses the same server, db and namespace.

    Each key keeps its last `history_limit` ended sessions, stamped with the wall time (`stamp`) they
    ended at; the history of every key is theirs merged, newest first, `history_limit` at most.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        history_limit: int = HISTORY_LIMIT,
        view: RedisView | None = None,
        stamp: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.names = Names(namespace)
        self.history_limit = history_limit
        self.view = view or RedisView(client, namespace=namespace)
        self.stamp = stamp

    def __repr__(self) -> str:
        return f"RedisStore(namespace={self.names.namespace!r})"

    def transact(self, key: str, change: Change[T], ended: Ended[T] = lambda result: ()) -> T:
        """Apply `change` to the key's record atomically (R8) and record what it ended, in one script."""

        def decide(raw: Raw) -> tuple[Swap | None, T]:
            new, result = change(decode_record(raw))
            at = self.stamp()
            pushed = [encode_ended(session, at) for session in ended(result)]
            value = None if new.empty else encode_record(new)
            if not pushed and value == (None if raw is None else text(raw)):
                return None, result  # nothing changes: no write
            return Swap(value, pushed), result

        name = self.names.of_key(key, RECORD)
        target = Target(name, self.names.of_key(key, HISTORY), self.history_limit, self.view.generation)
        return swap(self.view.wire, target, decide, self.view.ahead(name))

    def record(self, key: str) -> KeyRecord:
        with answering("reading a session"):
            return decode_record(self.client.get(self.names.of_key(key, RECORD)))

    def active(self, key: str) -> Session | None:
        active: Session | None = self.record(key).active
        return active

    def keys(self) -> tuple[str, ...]:
        with answering("listing sessions"):
            names = self.client.scan_iter(match=self.names.of_key("*", RECORD))
            return tuple(sorted(self.names.key_of(name, RECORD) for name in names))

    def reset(self, key: str | None = None) -> None:
        """Forget sessions and history (of one key or all); the clock and the admin state stay."""
        with answering("reset"):
            if key is not None:
                self.client.delete(self.names.of_key(key, RECORD), self.names.of_key(key, HISTORY))
                return
            delete(self.client, self.client.scan_iter(match=self.names.of_key("*", "*")))

    def history(self, key: str | None = None, limit: int | None = None) -> tuple[Session, ...]:
        """Ended sessions, newest first: one key's list, or every key's merged by the time they ended."""
        last = self.history_limit if limit is None else min(limit, self.history_limit)
        with answering("reading the history"):
            if key is None:
                names = list(self.client.scan_iter(match=self.names.of_key("*", HISTORY)))
            else:
                names = [self.names.of_key(key, HISTORY)]
            with self.client.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.lrange(name, 0, last - 1)
                lists = pipe.execute()
        ended = heapq.merge(*([decode_ended(raw) for raw in listed] for listed in lists), key=_at, reverse=True)
        return tuple(session for _, session in itertools.islice(ended, last))

    def record_ended(self, session: Session) -> None:
        name = self.names.of_key(session.key, HISTORY)
        with answering("recording an ended session"), self.client.pipeline() as pipe:
            pipe.lpush(name, encode_ended(session, self.stamp()))
            pipe.ltrim(name, 0, self.history_limit - 1)
            pipe.execute()


def _at(entry: tuple[float, Session]) -> float:
    return entry[0]
