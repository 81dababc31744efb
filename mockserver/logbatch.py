"""A log handler for a server under load: the lines logged in one turn of the event loop leave in one write.

The access log writes a line per request; written one by one, each line is a system call (stderr flushes
every line). Held until the loop's turn ends, the lines of every answer sent in that turn go out in one
write, in the order they were logged. Without a running loop (start-up, other threads) a line is
written at once, after any lines still held.

A line per request is the hot path of a served mock: where a logger's lines go only to one such handler
with the mock's own format (`direct`), the caller hands it the message and no LogRecord is made (its
making and formatting cost more than the rest of the line's way to stderr).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TextIO

LOG_FORMAT = "%(levelname)s:     %(message)s"  # every line of the served mock (config.log_config)


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
        self._hold(line)

    def write(self, level: int, message: str) -> None:
        """What `emit` does for a record of `level` and `message` when the formatter is LOG_FORMAT's."""
        self.acquire()
        try:
            self._hold(LOG_FORMAT % {"levelname": logging.getLevelName(level), "message": message} + self.terminator)
        finally:
            self.release()

    def _hold(self, line: str) -> None:
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


def direct(logger: logging.Logger, level: int) -> TurnBatchingHandler | None:
    """The handler to `write` to when a `level` line of `logger` would reach only it, unfiltered, in
    LOG_FORMAT; None when a LogRecord must be made (a level that is off, caplog's handlers, a user's
    own logging configuration)."""
    if not logger.isEnabledFor(level):
        return None
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        handlers += current.handlers
        current = current.parent if current.propagate else None
    only = handlers[0] if len(handlers) == 1 else None
    if not isinstance(only, TurnBatchingHandler) or only.filters or level < only.level:
        return None
    formatter = only.formatter
    return only if type(formatter) is logging.Formatter and formatter._fmt == LOG_FORMAT else None
