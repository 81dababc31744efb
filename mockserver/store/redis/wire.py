"""The connection to Redis: `connect`, the names under the namespace, `answering` (redis-py's failures as
`StoreUnavailable`) and `Wire`, the hot path's commands on a connection each thread keeps."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.connection import Connection

from mockserver.store.errors import StoreUnavailable

DEFAULT_NAMESPACE = "morpheus-mock"
GENERATION = "generation"  # under the namespace: the token every write of the admin state renews
RECORDS = "active:"  # under the namespace, + a key: the key's record (`RedisStore`)
Raw = bytes | str | None  # what redis-py answers for a string that may be missing


@contextlib.contextmanager
def answering(what: str) -> Iterator[None]:
    """Turn redis-py's failures into `StoreUnavailable` that names what failed."""
    try:
        yield
    except redis.RedisError as error:
        raise StoreUnavailable(f"the shared store failed ({what}): {error}") from None


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
"""KEYS: the name, a capped list, the generation. ARGV: whether the name was there, what it held, whether
to set it, its new value, a new generation token ('' to leave it), the list's cap, entries to push."""


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
