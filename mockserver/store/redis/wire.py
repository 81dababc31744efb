"""The connection to Redis: `connect` (synchronous, at start), the names under the namespace (`Names`,
layout 3), `answering` (every failure as `StoreUnavailable`) and `Wire`, the asynchronous commands on
redis-py's asyncio connections (hiredis packs the commands and parses the answers), one pipelined
connection per event loop.

Layout 3 puts every name in a hash tag (`{...}`), so a Redis Cluster can hold the store: one API key's
record and history share the tag `{<namespace>:<key>}` (one slot); the rarely changed admin state (the
faults, keys, automation and replies slots, the clock offset, the generation token) is ONE hash,
`{<namespace>}:admin`, beside its log, the journal and the id counter in the tag `{<namespace>}`. Every command
or script the mock sends touches names of one tag.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis
import redis.asyncio
from redis._parsers import hiredis as parsers_hiredis

from mockserver.store.errors import StoreUnavailable

DEFAULT_NAMESPACE = "morpheus-mock"
LAYOUT = "3"  # the names' layout; a store holding layout 1's or 2's names is reset at connect
GENERATION, CLOCK = "generation", "clock-offset"  # fields of the admin hash beside the slots' `<kind>:<name>`
TIMEOUT = 5.0  # seconds a round trip may take: a store that stopped answering costs a request this, not minutes
GATHER = 12  # turns of the loop a write waits at most for more commands, while each turn queues some (`_gather`)
Raw = bytes | str | None  # what Redis answers for a string that may be missing
_NONE_YET = getattr(parsers_hiredis, "NOT_ENOUGH_DATA", False)  # what its Reader answers for a part (5.x: False)
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


class answering:  # lower case: it reads as what it does, `with answering(...)`
    """Turn every failure of Redis or of the connection to it into `StoreUnavailable` that names what failed.

    A class, not a generator context manager (`contextlib`), which cost about 3,000 instructions more a
    request (callgrind, 64 keys in process: every transaction enters one).
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        if isinstance(error, (redis.RedisError, OSError)):  # OSError: refused, reset, timed out
            raise StoreUnavailable(f"the shared store failed ({self.what}): {error or type(error).__name__}") from None


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

    def by_hash(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        """The EVALSHA command that runs it on `keys` and `args`."""
        return ["EVALSHA", self.sha, len(keys), *keys, *args]


Connection = redis.asyncio.connection.AbstractConnection


class _Waiting:
    """Commands written on a line, and the answers read for them so far; `future` is None for a `send`."""

    __slots__ = ("count", "future", "replies", "since")

    def __init__(self, future: asyncio.Future[list[Any]] | None, count: int, since: float) -> None:
        self.future, self.count, self.since = future, count, since  # since: the loop's time it was queued
        self.replies: list[Any] = []


class _Line:
    """One loop's connection: what waits to be written, what waits for its answers (in order), the two
    tasks that write and read, and the watchdog that breaks the line when an answer is `TIMEOUT` late."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection  # opened by the first write
        self.unwritten: list[bytes] = []
        self.waiting: collections.deque[_Waiting] = collections.deque()
        self.writer: asyncio.Task[None] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.watchdog: asyncio.TimerHandle | None = None


class Wire:
    """The store's commands on ONE redis-py asyncio connection per event loop, pipelined: every request's
    commands are queued, written together by one task (one write for all the requests of a few turns of
    the loop, `_gather`), and one task reads the answers in order and hands each request its own.

    Redis answers a connection's commands in the order it got them, so the answers stay in step however
    many requests wait; a request that gives up (cancelled) leaves its answers to be read and dropped.
    A connection that fails, or a round trip slower than `TIMEOUT`, breaks the line: every request
    waiting on it fails, and the next opens a new one. A connection belongs to the loop that opened it
    and is never used by another (a test may run several loops; each uvicorn worker is a process of its
    own). `send` does not wait at all: its answers are checked by the reader and a failure logged.
    Errors are redis-py's (`answering` turns them into `StoreUnavailable`).
    """

    def __init__(self, url: str) -> None:
        # No timeout per read: one for the whole exchange (`TIMEOUT`), a timer a round trip, not a task per read.
        pool = redis.asyncio.ConnectionPool.from_url(url, socket_connect_timeout=2, socket_timeout=None, protocol=2)
        self.url = url
        self._connection_class = pool.connection_class
        self._connection_kwargs = pool.connection_kwargs
        self._lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Line] = weakref.WeakKeyDictionary()
        self._scripts: dict[str, Script] = {}  # loaded first on every line (`preload`)
        self._recent: tuple[asyncio.AbstractEventLoop, _Line] | None = None  # the line last used, and its loop

    def __repr__(self) -> str:
        return f"Wire({self.url!r})"

    def connection(self) -> Connection:
        """A new connection to the store, not yet open (the lines' own are made so too)."""
        return self._connection_class(**self._connection_kwargs)

    def _line(self, loop: asyncio.AbstractEventLoop) -> _Line:
        recent = self._recent
        if recent is not None and recent[0] is loop:  # a worker has one loop: most often the line last used
            return recent[1]
        line = self._lines.get(loop)
        if line is None:
            line = self._lines[loop] = _Line(self.connection())
            if self._scripts:  # before anything else on it: a new (or restarted) server has no scripts
                self._queue(loop, line, [["SCRIPT", "LOAD", script.text] for script in self._scripts.values()], None)
        self._recent = loop, line
        return line

    def preload(self, script: Script) -> None:
        """Load `script` on every line opened from now on, so that running it by its hash does not meet NOSCRIPT
        (which costs a transaction a second try) unless the server forgot it since (SCRIPT FLUSH)."""
        self._scripts[script.sha] = script

    async def call(self, *commands: Sequence[Any]) -> list[Any]:
        """Send `commands` in one write (with other requests') and return their answers; an error answer raises."""
        replies = await self.submit(*commands)
        for reply in replies:
            if isinstance(reply, redis.ResponseError):
                raise reply
        return replies

    def submit(self, *commands: Sequence[Any]) -> asyncio.Future[list[Any]]:
        """Queue `commands` and return the future of their answers (error answers among them, as exceptions),
        without waiting: what this loop sends later reaches Redis after them, on the same connection."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._queue(loop, self._line(loop), commands, future)
        return future

    def send(self, *commands: Sequence[Any]) -> None:
        """Queue `commands` without waiting for them; an error answer, or a broken line, is logged."""
        loop = asyncio.get_running_loop()
        self._queue(loop, self._line(loop), commands, None)

    def _queue(
        self,
        loop: asyncio.AbstractEventLoop,
        line: _Line,
        commands: Sequence[Sequence[Any]],
        future: asyncio.Future[list[Any]] | None,
    ) -> None:
        line.unwritten.extend(hiredis.pack_command(tuple(command)) for command in commands)  # C, not redis-py's
        line.waiting.append(_Waiting(future, len(commands), loop.time()))
        if line.writer is None:
            line.writer = loop.create_task(self._write(line))
        if line.watchdog is None:
            line.watchdog = loop.call_later(TIMEOUT, self._watch, line)

    def _watch(self, line: _Line) -> None:
        """The line's one timer (not one per round trip): break it if its oldest answer is `TIMEOUT` late,
        else look again when that answer would be."""
        line.watchdog = None
        if not line.waiting:
            return
        loop = asyncio.get_running_loop()
        late = line.waiting[0].since + TIMEOUT - loop.time()
        if late <= 0:
            self._break(line, redis.TimeoutError(f"no answer in {TIMEOUT:g} s"))
            return
        line.watchdog = loop.call_later(late, self._watch, line)

    async def _write(self, line: _Line) -> None:
        """Open the line if need be, then write what is queued until nothing is."""
        connection = line.connection
        try:
            if line.reader is None:
                await connection.connect()  # type: ignore[no-untyped-call]
                line.reader = asyncio.get_running_loop().create_task(self._read(line))
            while line.unwritten:
                await _gather(line)
                data, line.unwritten = line.unwritten, []
                if data:  # else the line broke meanwhile
                    await connection.send_packed_command(data, check_health=False)
        except (redis.RedisError, OSError) as error:
            self._break(line, error)
        finally:
            line.writer = None

    async def _read(self, line: _Line) -> None:
        """Read answers in order and hand each request its own, until the connection fails or closes."""
        waiting = line.waiting
        answers = _answers(line.connection)
        try:
            while True:
                for reply in await answers():
                    head = waiting[0]
                    head.replies.append(reply)
                    if len(head.replies) == head.count:
                        waiting.popleft()
                        _hand(head)
        except (redis.RedisError, OSError) as error:
            self._break(line, error)
        finally:  # its loop is ending (cancelled), or the line broke: forget it, so the loop can be freed
            self._forget(line)
            await line.connection.disconnect(nowait=True)  # without a wait: nothing is left to interrupt

    def _forget(self, line: _Line) -> None:
        loop = asyncio.get_running_loop()
        if self._lines.get(loop) is line:
            del self._lines[loop]
        if self._recent is not None and self._recent[1] is line:
            self._recent = None

    def _break(self, line: _Line, error: Exception) -> None:
        """A line that failed is never used again: every request waiting on it fails with `error`."""
        self._forget(line)
        if line.watchdog is not None:
            line.watchdog.cancel()
            line.watchdog = None
        if line.reader is not None:
            line.reader.cancel()  # redis-py disconnects a connection whose read is cancelled
        waiting, line.waiting, line.unwritten = line.waiting, collections.deque(), []
        for each in waiting:
            if each.future is None:
                logger.warning("commands sent without waiting may be lost: %s", error)
            elif not each.future.done():
                each.future.set_exception(error)

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """`script` by its hash; by its text (which Redis then keeps) if the server has forgotten it."""
        try:
            return (await self.call(script.by_hash(keys, args)))[0]
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
        """Close this loop's line (a loop that ends cancels its reader, which closes it)."""
        line = self._line(asyncio.get_running_loop())
        self._break(line, redis.ConnectionError("the wire was closed"))
        await line.connection.disconnect()


async def _gather(line: _Line) -> None:
    """Let the loop's other ready work queue its commands before a write: a turn of the loop at a time, while the
    last one queued more, `GATHER` turns at most. A request's commands are queued a turn or two after the one
    before it (its task wakes a turn after its answer came), so one turn rarely holds many; gathered, two workers
    on the bench's mix write to Redis 0.22 times a request instead of 0.51, and both they and Redis spend less."""
    for _ in range(GATHER):
        queued = len(line.unwritten)
        await asyncio.sleep(0)
        if len(line.unwritten) == queued:
            return


def _hand(waiting: _Waiting) -> None:
    """Answers to whoever waits for them; those nobody waits for are checked here."""
    if waiting.future is None:
        for reply in waiting.replies:
            if isinstance(reply, redis.ResponseError):
                logger.warning("a command sent without waiting failed: %s", reply)
    elif not waiting.future.done():  # a request that gave up (cancelled) leaves its answers here
        waiting.future.set_result(waiting.replies)


def _answers(connection: Connection) -> Callable[[], Awaitable[list[Any]]]:
    """How a line's reader takes its answers, in order, an error answer as its exception (returned, not
    raised). With hiredis's parser (what redis-py uses when hiredis is installed, as the mock requires): every
    answer the parser holds, read from the socket only when it holds none. redis-py's own `read_response`
    costs a few coroutines and an error context around each parse (25,800 instructions a `--store` request of
    the bench's 64 keys, 5% of it); its parser's `read_from_socket` and hiredis `Reader` are what that method
    runs. Any other parser: `read_response`, one answer at a time."""
    parser = getattr(connection, "_parser", None)
    reader = getattr(parser, "_reader", None)
    fill = getattr(parser, "read_from_socket", None)
    if not isinstance(reader, hiredis.Reader) or fill is None:
        return functools.partial(_reply, connection)

    async def answers() -> list[Any]:
        got: list[Any] = []
        while True:
            reply = reader.gets()
            if reply is _NONE_YET:
                if got:
                    return got
                await fill()
            elif isinstance(reply, redis.ConnectionError):  # as redis-py's parser raises it
                raise reply
            else:
                got.append(reply)

    return answers


async def _reply(connection: Connection) -> list[Any]:
    """The next answer, alone; an error answer is returned (as its exception), not raised."""
    try:
        return [await connection.read_response()]
    except redis.ResponseError as error:
        return [error]
