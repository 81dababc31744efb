"""`RedisView`: a worker's reads of the rarely changed admin state, kept while the generation token holds.

Every write of that state (faults, keys, the clock offset) sets a new generation token in the same
atomic step; a request reads the token once (`fresh`), and within requests a value read under the
current token is reused.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import redis
from redis.client import Pipeline

from mockserver.store.redis.wire import DEFAULT_NAMESPACE, Names, Raw, Wire, new_token


class RedisView:
    """This worker's reads of the rarely changed admin state (faults, keys, the clock offset), kept while
    the store's generation token stays the same, and the record of the key a request names, read ahead.

    Every write of that state sets `{<namespace>}:generation` to a new random token in the same atomic
    step (`touch`). A request starts in `fresh`, which reads the token (and its key's record, in the
    key's own hash tag: two GETs, not one MGET across tags) in one round trip: if the token changed (or
    the store cannot tell), what was kept is dropped. Within requests, `read` answers from what was kept
    under the current token; outside any request (and while the token is unknown) it asks Redis. The
    record read ahead serves the request's first try at its transaction (`ahead`), which writes only if
    the record is still the one read.
    """

    reads_ahead = True

    def __init__(self, client: redis.Redis, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.client = client
        self.wire = Wire(client)
        self.names = Names(namespace)
        self.generation = self.names.generation
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
        names = [self.generation] if key is None else [self.generation, self.names.of_key(key, "record")]
        try:
            token, *ahead = self.wire.call(*(["GET", name] for name in names))
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
        now, raw = self.wire.call(["MGET", self.generation, name])[0]  # the value and its token, atomically (one tag)
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
