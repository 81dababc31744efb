"""`RedisStore`: the domain's `SessionStore` in Redis, shared by every worker that uses the same server.

A key's record (its gateway row and the sessions open on chain, one JSON value) is one Redis string,
and every transition is atomic per key (R8) by `swap`: one GET, then a compare-and-set script that
writes only if the value is still the one read (the session book draws armed faults at most once, so
a retry is safe). Ended sessions go to a capped list in the same script.
"""

from __future__ import annotations

from collections.abc import Callable

import redis
from redis.client import Pipeline

from mockserver.domain import KeyRecord, Session
from mockserver.domain.store import HISTORY_LIMIT, Change, Ended, T
from mockserver.store.redis.codecs import decode_record, decode_session, encode, encode_record
from mockserver.store.redis.transaction import Swap, Target, optimistic, swap
from mockserver.store.redis.view import RedisView
from mockserver.store.redis.wire import DEFAULT_NAMESPACE, RECORDS, Raw, answering


class RedisStore:
    """A `SessionStore` in Redis, shared by every process that uses the same server, db and namespace."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        history_limit: int = HISTORY_LIMIT,
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
            kept = [raw for raw in pipe.lrange(self._history, 0, -1) if keep(decode_session(raw))]

            def write(pipe: Pipeline) -> None:
                pipe.delete(self._history, also_delete)
                if kept:
                    pipe.rpush(self._history, *kept)

            return write, None

        optimistic(self.client, [self._history], decide)

    def history(self, key: str | None = None, limit: int | None = None) -> tuple[Session, ...]:
        with answering("reading the history"):
            ended = [decode_session(raw) for raw in self.client.lrange(self._history, 0, -1)]
        chosen = [session for session in ended if key is None or session.key == key]
        return tuple(chosen[:limit])

    def record_ended(self, session: Session) -> None:
        with answering("recording an ended session"), self.client.pipeline() as pipe:
            pipe.lpush(self._history, encode(session))
            pipe.ltrim(self._history, 0, self.history_limit - 1)
            pipe.execute()
