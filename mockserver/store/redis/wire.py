"""The connection to Redis: `connect`, the names under the namespace (`Names`, layout 2), `answering`
(redis-py's failures as `StoreUnavailable`) and `Wire`, the hot path's commands on a connection each
thread keeps.

Layout 2 puts every name in a hash tag (`{...}`), so a Redis Cluster can hold the store: one API key's
record and history share the tag `{<namespace>:<key>}` (one slot), and the rarely changed admin state
with its generation token, the clock offset, the journal and the id counter share `{<namespace>}`.
Every multi-key command or script the mock sends touches names of one tag.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script
from redis.connection import Connection

from mockserver.store.errors import StoreUnavailable

DEFAULT_NAMESPACE = "morpheus-mock"
LAYOUT = "2"  # the names' layout; a store holding layout 1's names (no tags, no marker) is reset at connect
Raw = bytes | str | None  # what redis-py answers for a string that may be missing
logger = logging.getLogger("mockserver")


@dataclass(frozen=True)
class Names:
    """Every name the mock uses in Redis under one namespace, each in the hash tag of what it belongs to."""

    namespace: str = DEFAULT_NAMESPACE

    def shared(self, what: str) -> str:
        """A name of the admin state, the clock, the journal or the ids: all in the tag `{<namespace>}`."""
        return f"{{{self.namespace}}}:{what}"

    def of_key(self, key: str, what: str) -> str:
        """A name of one API key (its `record`, its `history`): all in the tag `{<namespace>:<key>}`."""
        return f"{{{self.namespace}:{key}}}:{what}"

    @property
    def generation(self) -> str:
        """The token every write of the admin state renews (`RedisView`)."""
        return self.shared("generation")

    def key_of(self, name: bytes | str, what: str) -> str:
        """The API key a name of `of_key(key, what)` belongs to."""
        return text(name).removeprefix(f"{{{self.namespace}:").removesuffix(f"}}:{what}")


@contextlib.contextmanager
def answering(what: str) -> Iterator[None]:
    """Turn redis-py's failures into `StoreUnavailable` that names what failed."""
    try:
        yield
    except redis.RedisError as error:
        raise StoreUnavailable(f"the shared store failed ({what}): {error}") from None


def connect(url: str, namespace: str = DEFAULT_NAMESPACE) -> redis.Redis:
    """A client for `redis://HOST:PORT/N`, checked with a PING so that a wrong URL fails at start, on a
    store in this layout (`settle_layout`).

    Timeouts are short: a store that stopped answering costs a request seconds, not minutes.
    """
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        client.ping()
        settle_layout(client, Names(namespace), url)
    except (redis.RedisError, ValueError) as error:
        raise StoreUnavailable(f"cannot use the store {url}: {error}") from None
    return client


def settle_layout(client: redis.Redis, names: Names, url: str) -> None:
    """Mark the store as layout `LAYOUT`; a store in layout 1 (names without tags) is reset, and says so.

    Raises:
        StoreUnavailable: the store is marked with another layout (a newer mock's): nothing is touched.
    """
    marker = names.shared("layout")
    found: Raw = client.get(marker)
    if found is not None and text(found) != LAYOUT:
        raise StoreUnavailable(f"cannot use the store {url}: it holds layout {text(found)}, this mock reads {LAYOUT}")
    if found is None:
        old = delete(client, client.scan_iter(match=f"{names.namespace}:*"))  # layout 1: `<namespace>:<what>`
        if old:
            logger.warning("the store %s held %d names of layout 1: reset to layout %s", url, old, LAYOUT)
        client.set(marker, LAYOUT)


def delete(client: redis.Redis, names: Iterable[Any]) -> int:
    """Delete `names` one DEL each, in one round trip (names of several hash tags: no multi-key DEL)."""
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.delete(name)
        return len(pipe.execute())


def text(raw: bytes | str) -> str:
    """What Redis holds as text (redis-py answers bytes)."""
    return raw.decode() if isinstance(raw, bytes) else raw


def new_token() -> str:
    return secrets.token_hex(8)


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
"""KEYS: the name, a capped list, the generation (only with a new token: it is in the admin state's tag).
ARGV: whether the name was there, what it held, whether to set it, its new value, a new generation token
('' to leave it), the list's cap, entries to push."""


class _Held:
    """A thread's connection, whose pool and process it belongs to, and the answers it has not read yet."""

    def __init__(self, pool: Any, pid: int) -> None:
        self.pool, self.pid = pool, pid
        self.connection: Connection = pool.get_connection()
        self.unread = 0


class Wire:
    """The hot path's commands on a connection each thread keeps (redis-py's client checks one out of its
    pool and back for every command, which was two thirds of a GET's CPU here).

    A connection that fails is dropped (the next call opens a new one); a forked process, or a new pool
    on the client (a test's way of breaking it), gets a connection of its own. Errors are redis-py's.
    `send` does not wait for its answers: the thread's next command reads them first, so every command
    of a connection still runs in order.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.swap_script: Script = client.register_script(_SWAP)  # its hash is computed once
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Wire({self.client!r})"

    def call(self, *commands: Sequence[Any]) -> list[Any]:
        """Send `commands` in one round trip and return their answers; an error answer raises."""
        held = self._held()
        connection = held.connection
        try:
            connection.send_packed_command(connection.pack_commands(commands))  # type: ignore[no-untyped-call]
            replies = [_reply(connection) for _ in commands]  # every answer is read, so none is left behind
        except BaseException:
            self._drop(connection)
            raise
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return replies

    def send(self, *commands: Sequence[Any]) -> None:
        """Send `commands` without waiting: no round trip. Their answers are read before the thread's next
        command; one that failed is logged then (`_held`), as nobody waits for it any more."""
        held = self._held()
        try:
            held.connection.send_packed_command(held.connection.pack_commands(commands))  # type: ignore[no-untyped-call]
        except BaseException:
            self._drop(held.connection)
            raise
        held.unread += len(commands)

    def _held(self) -> _Held:
        """This thread's connection, its earlier `send`s answered; a new one if it broke or is another's."""
        pool, pid = self.client.connection_pool, os.getpid()
        held: _Held | None = getattr(self._local, "held", None)
        if held is None or held.pool is not pool or held.pid != pid:  # a forked worker opens its own
            held = self._local.held = _Held(pool, pid)
        if held.unread:
            try:
                replies = [_reply(held.connection) for _ in range(held.unread)]
            except redis.RedisError as error:
                self._drop(held.connection)
                logger.warning("commands sent without waiting may be lost: %s", error)
                return self._held()
            held.unread = 0
            for reply in replies:
                if isinstance(reply, redis.ResponseError):
                    logger.warning("a command sent without waiting failed: %s", reply)
        return held

    def _drop(self, connection: Connection) -> None:
        """A connection whose answers may be out of step is never used again."""
        self._local.held = None
        connection.disconnect()  # type: ignore[no-untyped-call]

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
