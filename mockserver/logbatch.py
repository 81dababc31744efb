"""A log handler for a server under load: the lines logged in one turn of the event loop leave in one write.

The access log writes a line per request; written one by one, each line is a system call (stderr flushes
every line). Held until the loop's turn ends, the lines of every answer sent in that turn go out in one
write, in the order they were logged. Without a running loop (start-up, other threads) a line is
written at once, after any lines still held.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TextIO


class TurnBatchingHandler(logging.StreamHandler[TextIO]):
    """`logging.StreamHandler` whose lines wait for the end of the event loop's turn, then leave together."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self.held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:  # as StreamHandler: a record that cannot be formatted is reported, not raised
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.held.append(line)
            self.flush()
            return
        if not self.held:
            loop.call_soon(self.flush)
        self.held.append(line)

    def flush(self) -> None:
        self.acquire()  # the handler's lock is reentrant: emit holds it when it flushes
        try:
            if self.held:
                text = "".join(self.held)
                self.held.clear()
                self.stream.write(text)
            super().flush()
        finally:
            self.release()
