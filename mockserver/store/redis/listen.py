"""`Listener`: a channel this worker listens on (Redis pub/sub, one connection per event loop), by which other
workers hand it a key's turn (`RedisStore`)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

import redis

from mockserver.store.redis.wire import TIMEOUT, Wire, logger


class Listener:
    """The messages published to `channel`, handed to `handle` in the order they came, on the loop that listens.

    A loop listens from its first `listening()` on, on a connection of its own (SUBSCRIBE holds a connection);
    one that breaks is forgotten and the next `listening()` opens another. What was published meanwhile is
    lost: whoever waited for it gives up after its own timeout.
    """

    def __init__(self, wire: Wire, channel: str, handle: Callable[[bytes], None]) -> None:
        self.wire, self.channel, self.handle = wire, channel, handle
        # each loop's subscription (confirmed or not) and the task that reads its messages
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[asyncio.Future[bool], asyncio.Task[None]]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"Listener({self.channel!r})"

    async def listening(self) -> bool:
        """Whether this loop listens on the channel now: subscribed at the first call (which waits for Redis to
        confirm it), at once after that; False if it could not subscribe."""
        loop = asyncio.get_running_loop()
        listening = self._loops.get(loop)
        if listening is None:
            subscribed = loop.create_future()
            listening = self._loops[loop] = subscribed, loop.create_task(self._listen(subscribed))
        return await asyncio.shield(listening[0])

    async def _listen(self, subscribed: asyncio.Future[bool]) -> None:
        connection = self.wire.connection()
        try:
            async with asyncio.timeout(TIMEOUT):
                await connection.connect()  # type: ignore[no-untyped-call]
                await connection.send_command("SUBSCRIBE", self.channel)
                await connection.read_response()  # the subscription, confirmed
            subscribed.set_result(True)
            while True:  # subscribed to one channel, the connection gets only its messages: [b"message", channel, data]
                self.handle((await connection.read_response())[2])
        except (redis.RedisError, OSError) as error:  # TimeoutError is an OSError
            logger.warning("stopped listening on %s: %s", self.channel, error or type(error).__name__)
        finally:  # the connection broke, or its loop is ending (cancelled): the next `listening()` starts again
            if not subscribed.done():
                subscribed.set_result(False)
            loop = asyncio.get_running_loop()
            del self._loops[loop]
            await connection.disconnect()
