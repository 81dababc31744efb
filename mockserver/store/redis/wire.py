"""The connection to Redis: `connect` (synchronous, at start), the names under the namespace (`Names`,
layout 3), `answering` (every failure as `StoreUnavailable`) and `Wire`, the asynchronous commands on
redis-py's asyncio connections (hiredis parses the answers), a small pool of them per event loop.

Layout 3 puts every name in a hash tag (`{...}`), so a Redis Cluster can hold the store: one API key's
record and history share the tag `{<namespace>:<key>}` (one slot); the rarely changed admin state (the
faults, keys, automation and replies slots, the clock offset, the generation token) is ONE hash,
`{<namespace>}:admin`, beside the journal and the id counter in the tag `{<namespace>}`. Every command
or script the mock sends touches names of one tag.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio

from mockserver.store.errors import StoreUnavailable

DEFAULT_NAMESPACE = "morpheus-mock"
LAYOUT = "3"  # the names' layout; a store holding layout 1's or 2's names is reset at connect
GENERATION, CLOCK = "generation", "clock-offset"  # fields of the admin hash beside the slots' `<kind>:<name>`
TIMEOUT = 5.0  # seconds a round trip may take: a store that stopped answering costs a request this, not minutes
Raw = bytes | str | None  # what Redis answers for a string that may be missing
logger = logging.getLogger("mockserver")


@dataclass(frozen=True)
class Names:
    """Every name the mock uses in Redis under one namespace, each in the hash tag of what it belongs to."""

    namespace: str = DEFAULT_NAMESPACE

    def shared(self, what: str) -> str:
        """A name of the admin hash, the journal, the ids or the layout marker: all in the tag `{<namespace>}`."""
        return f"{{{self.namespace}}}:{what}"

    def of_key(self, key: str, what: str) -> str:
        """A name of one API key (its `record`, its `history`): all in the tag `{<namespace>:<key>}`."""
        return f"{{{self.namespace}:{key}}}:{what}"

    @property
    def admin(self) -> str:
        """The hash of the rarely changed admin state, its generation token among its fields (`RedisView`)."""
        return self.shared("admin")

    def key_of(self, name: bytes | str, what: str) -> str:
        """The API key a name of `of_key(key, what)` belongs to."""
        return text(name).removeprefix(f"{{{self.namespace}:").removesuffix(f"}}:{what}")


@contextlib.contextmanager
def answering(what: str) -> Iterator[None]:
    """Turn every failure of Redis or of the connection to it into `StoreUnavailable` that names what failed."""
    try:
        yield
    except (redis.RedisError, OSError) as error:  # OSError: refused, reset, timed out
        raise StoreUnavailable(f"the shared store failed ({what}): {error or type(error).__name__}") from None


def connect(url: str, namespace: str = DEFAULT_NAMESPACE) -> Wire:
    """The `Wire` to `redis://HOST:PORT/N`, checked with a PING so that a wrong URL fails at start, on a
    store in this layout (`settle_layout`). Synchronous: it runs before the server's event loop.

    Timeouts are short: a store that stopped answering costs a request seconds, not minutes.
    """
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5) as client:
            client.ping()
            settle_layout(client, Names(namespace), url)
        return Wire(url)
    except (redis.RedisError, ValueError) as error:
        raise StoreUnavailable(f"cannot use the store {url}: {error}") from None


def settle_layout(client: redis.Redis, names: Names, url: str) -> None:
    """Mark the store as layout `LAYOUT`; a store in layout 1 (no tags) or 2 (admin state in strings) is
    reset, and says so.

    Raises:
        StoreUnavailable: the store is marked with another layout (a newer mock's): nothing is touched.
    """
    marker = names.shared("layout")
    found: Raw = client.get(marker)
    if found is not None and text(found) not in ("2", LAYOUT):
        raise StoreUnavailable(f"cannot use the store {url}: it holds layout {text(found)}, this mock reads {LAYOUT}")
    if found is None or text(found) != LAYOUT:
        old = "1" if found is None else "2"
        patterns = [f"{names.namespace}:*"] if found is None else [names.shared("*"), names.of_key("*", "*")]
        gone = delete(client, [name for pattern in patterns for name in client.scan_iter(match=pattern)])
        if gone:
            logger.warning("the store %s held %d names of layout %s: reset to layout %s", url, gone, old, LAYOUT)
        client.set(marker, LAYOUT)


def delete(client: redis.Redis, names: Iterable[Any]) -> int:
    """Delete `names` one DEL each, in one round trip (names of several hash tags: no multi-key DEL)."""
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.delete(name)
        return len(pipe.execute())


def text(raw: bytes | str) -> str:
    """What Redis holds as text (it answers bytes)."""
    return raw.decode() if isinstance(raw, bytes) else raw


def new_token() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Script:
    """A Lua script, run by its hash (`Wire.run`)."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode()).hexdigest())


Connection = redis.asyncio.connection.AbstractConnection


class _Lanes:
    """One event loop's connections: the free ones, the commands sent without waiting, their flush."""

    def __init__(self) -> None:
        self.free: list[Connection] = []
        self.outbox: list[Sequence[Any]] = []
        self.flush: asyncio.Task[None] | None = None
        self.keeper: AsyncIterator[None] | None = None  # closes the connections when the loop shuts down

    async def close(self) -> None:
        free, self.free = self.free, []
        for connection in free:
            await connection.disconnect()


async def _keeper(lanes: _Lanes) -> AsyncIterator[None]:
    """An async generator the loop finalizes at its end (`asyncio.run`, uvicorn): its connections close then."""
    try:
        yield
    finally:
        await lanes.close()


class Wire:
    """The store's commands on redis-py's asyncio connections, a pool of them per event loop.

    A connection belongs to the loop that opened it and is never used by another (a test may run several
    loops; each uvicorn worker is a process with its own). `call` checks a free connection out (opening
    one if none is free), sends its commands in one write and reads their answers, so a loop overlaps
    as many requests' round trips as it has requests waiting. A connection that fails or is cancelled
    mid-answer is dropped, never reused. `send` does not wait at all: the commands are flushed by a task
    of the loop, their answers checked there and a failure logged. Errors are redis-py's (`answering`
    turns them into `StoreUnavailable`).
    """

    def __init__(self, url: str) -> None:
        # No timeout per read: one for the whole exchange (`TIMEOUT`), a timer a round trip, not a task per read.
        pool = redis.asyncio.ConnectionPool.from_url(url, socket_connect_timeout=2, socket_timeout=None, protocol=2)
        self.url = url
        self._connection_class = pool.connection_class
        self._connection_kwargs = pool.connection_kwargs
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lanes] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"Wire({self.url!r})"

    def _lanes(self) -> _Lanes:
        loop = asyncio.get_running_loop()
        lanes = self._loops.get(loop)
        if lanes is None:
            lanes = self._loops[loop] = _Lanes()
        return lanes

    async def call(self, *commands: Sequence[Any]) -> list[Any]:
        """Send `commands` in one round trip and return their answers; an error answer raises."""
        lanes = self._lanes()
        connection = await self._checkout(lanes)
        replies = await self._exchange(connection, commands)
        lanes.free.append(connection)
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return replies

    async def _checkout(self, lanes: _Lanes) -> Connection:
        if lanes.free:
            return lanes.free.pop()
        if lanes.keeper is None:
            lanes.keeper = _keeper(lanes)
            await anext(lanes.keeper)  # the loop now knows it and finalizes it at its end
        connection = self._connection_class(**self._connection_kwargs)
        await connection.connect()  # type: ignore[no-untyped-call]
        return connection

    async def _exchange(self, connection: Connection, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Every answer is read, so none is left behind; a failure (or a cancel) drops the connection."""
        try:
            async with asyncio.timeout(TIMEOUT):
                await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
                return [await _reply(connection) for _ in commands]
        except BaseException:
            await asyncio.shield(connection.disconnect())
            raise

    def send(self, *commands: Sequence[Any]) -> None:
        """Queue `commands` without waiting: a task of this loop flushes what is queued in one write and
        logs a failure, as nobody waits for it any more."""
        lanes = self._lanes()
        lanes.outbox.extend(commands)
        if lanes.flush is None:
            lanes.flush = asyncio.get_running_loop().create_task(self._flush(lanes))

    async def _flush(self, lanes: _Lanes) -> None:
        """Write what is queued, again while more is queued meanwhile; an answer nobody waits for is checked here."""
        try:
            while lanes.outbox:
                connection = await self._checkout(lanes)
                commands, lanes.outbox = lanes.outbox, []
                replies = await self._exchange(connection, commands)
                lanes.free.append(connection)
                for reply in replies:
                    if isinstance(reply, redis.ResponseError):
                        logger.warning("a command sent without waiting failed: %s", reply)
        except (redis.RedisError, OSError) as error:
            lanes.outbox = []
            logger.warning("commands sent without waiting may be lost: %s", error)
        finally:
            lanes.flush = None

    async def settle(self) -> None:
        """Wait until what this loop sent without waiting has been answered (a worker reads its own writes)."""
        lanes = self._lanes()
        while lanes.flush is not None:
            await asyncio.shield(lanes.flush)

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """`script` by its hash; by its text (which Redis then keeps) if the server has forgotten it."""
        try:
            return (await self.call(["EVALSHA", script.sha, len(keys), *keys, *args]))[0]
        except redis.exceptions.NoScriptError:
            return (await self.call(["EVAL", script.text, len(keys), *keys, *args]))[0]

    async def scan(self, pattern: str) -> list[bytes]:
        """Every name matching `pattern` (SCAN, a page per round trip)."""
        names: list[bytes] = []
        cursor: Any = 0
        while True:
            cursor, page = (await self.call(["SCAN", cursor, "MATCH", pattern, "COUNT", 1000]))[0]
            names.extend(page)
            if int(cursor) == 0:
                return names

    async def close(self) -> None:
        """Close this loop's free connections (a loop that ends closes them itself)."""
        await self._lanes().close()


async def _reply(connection: Connection) -> Any:
    """One answer; an error answer is returned (as its exception), not raised."""
    try:
        return await connection.read_response()
    except redis.ResponseError as error:
        return error
