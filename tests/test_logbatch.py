"""The access log's handler: lines of one event-loop turn leave in one write, in order, and none is lost."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable

import pytest

from mockserver.logbatch import LOG_FORMAT, TurnBatchingHandler, direct


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


def served_loggers(handler: logging.Handler, level: int = logging.INFO) -> logging.Logger:
    """A `mockserver.access` under a `mockserver` that holds `handler` and does not propagate, as served."""
    parent, child = logging.Logger("mockserver", level), logging.Logger("mockserver.access")
    parent.propagate, child.parent = False, parent
    parent.addHandler(handler)
    return child


def served_handler(stream: io.StringIO) -> TurnBatchingHandler:
    handler = TurnBatchingHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


def test_a_line_written_directly_reads_as_the_record_would() -> None:
    by_record, direct_line = io.StringIO(), io.StringIO()
    served_handler(by_record).handle(record("POST %s %d", "/x?a=b", 200))
    served_handler(direct_line).write(logging.INFO, "POST /x?a=b 200")
    assert direct_line.getvalue() == by_record.getvalue() == "INFO:     POST /x?a=b 200\n"


def test_a_line_written_directly_waits_for_the_turn_like_the_others() -> None:
    stream = CountingStream()
    handler = served_handler(stream)

    async def serve() -> str:
        handler.handle(record("first"))
        handler.write(logging.INFO, "second")
        held = stream.getvalue()
        await asyncio.sleep(0)
        return held

    assert asyncio.run(serve()) == ""
    assert (stream.getvalue(), stream.writes) == ("INFO:     first\nINFO:     second\n", 1)


def test_the_served_handler_is_written_to_directly() -> None:
    handler = served_handler(io.StringIO())
    assert direct(served_loggers(handler), logging.INFO) is handler


def _filtered(logger: logging.Logger) -> None:
    logger.addFilter(lambda _: True)


def _handler_filtered(logger: logging.Logger) -> None:
    logger.parent.handlers[0].addFilter(lambda _: True)  # type: ignore[union-attr]


def _quiet_handler(logger: logging.Logger) -> None:
    logger.parent.handlers[0].setLevel(logging.WARNING)  # type: ignore[union-attr]


def _second_handler(logger: logging.Logger) -> None:
    logger.addHandler(logging.NullHandler())


def _propagates(logger: logging.Logger) -> None:
    above = logging.Logger("root")
    above.addHandler(logging.NullHandler())  # caplog's handler sits on the root logger
    logger.parent.propagate, logger.parent.parent = True, above  # type: ignore[union-attr]


def _other_format(logger: logging.Logger) -> None:
    logger.parent.handlers[0].setFormatter(logging.Formatter("%(asctime)s " + LOG_FORMAT))  # type: ignore[union-attr]


def _other_formatter_class(logger: logging.Logger) -> None:
    class Coloured(logging.Formatter):
        pass

    logger.parent.handlers[0].setFormatter(Coloured(LOG_FORMAT))  # type: ignore[union-attr]


def _plain_stream_handler(logger: logging.Logger) -> None:
    stream = logging.StreamHandler(io.StringIO())
    stream.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.parent.handlers[:] = [stream]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "change",
    [
        _filtered,
        _handler_filtered,
        _quiet_handler,
        _second_handler,
        _propagates,
        _other_format,
        _other_formatter_class,
        _plain_stream_handler,
    ],
)
def test_a_record_is_made_wherever_the_line_might_go_elsewhere_or_look_different(
    change: Callable[[logging.Logger], None],
) -> None:
    logger = served_loggers(served_handler(io.StringIO()))
    change(logger)
    assert direct(logger, logging.INFO) is None


def test_no_line_at_all_when_the_level_is_off() -> None:
    assert direct(served_loggers(served_handler(io.StringIO()), level=logging.WARNING), logging.INFO) is None
