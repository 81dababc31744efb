"""The access log's handler: lines of one event-loop turn leave in one write, in order, and none is lost."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from mockserver.logbatch import TurnBatchingHandler


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("mockserver.access", logging.INFO, __file__, 1, message, args, None)


def test_without_a_running_loop_a_line_is_written_at_once() -> None:
    stream = CountingStream()
    handler = TurnBatchingHandler(stream)
    handler.handle(record("one %d", 1))
    assert (stream.getvalue(), stream.writes) == ("one 1\n", 1)


def test_the_lines_of_one_turn_leave_in_one_write_in_order() -> None:
    stream = CountingStream()
    handler = TurnBatchingHandler(stream)

    async def serve() -> str:
        for number in range(3):
            handler.handle(record("line %d", number))
        held = stream.getvalue()
        await asyncio.sleep(0)  # the turn ends
        return held

    assert asyncio.run(serve()) == ""
    assert (stream.getvalue(), stream.writes) == ("line 0\nline 1\nline 2\n", 1)


def test_a_flush_writes_what_is_held_at_once() -> None:
    stream = CountingStream()
    handler = TurnBatchingHandler(stream)

    async def serve() -> str:
        handler.handle(record("last words"))
        handler.flush()  # what logging.shutdown does to every handler at exit
        return stream.getvalue()

    assert asyncio.run(serve()) == "last words\n"


def test_a_record_that_cannot_be_formatted_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = CountingStream()
    handler = TurnBatchingHandler(stream)
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    broken = record("%d", "not a number")
    handler.handle(broken)
    assert reported == [broken]
    assert stream.getvalue() == ""
