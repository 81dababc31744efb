"""Injected time: the system clock and the fake clock the expiry tests drive (R6)."""

from __future__ import annotations

import math
import time

import pytest

from mockserver.domain import FAKE_START, MAX_TIME, FakeClock, InvalidTime, OffsetClock, SystemClock, immediate


def test_clock_system_clock_follows_wall_time() -> None:
    before = time.time()
    now = SystemClock().now()
    assert before <= now <= time.time()


def test_clock_fake_clock_starts_at_2026() -> None:
    assert FakeClock().now() == FAKE_START == 1_767_225_600.0
    assert repr(FakeClock(10)) == "FakeClock(10.0)"


def test_clock_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(100.0)
    assert clock.now() == clock.now() == 100.0
    assert immediate(clock.advance(0.5)) == 100.5
    assert immediate(clock.advance(-0.25)) == 100.25
    assert immediate(clock.set(7)) == 7.0
    assert clock.now() == 7.0


@pytest.mark.parametrize(
    "t", [math.nan, math.inf, -1.0, MAX_TIME + 1], ids=["nan", "infinite", "before-epoch", "after-9999"]
)
def test_clock_fake_clock_rejects_times_a_datetime_cannot_hold(t: float) -> None:
    clock = FakeClock()
    with pytest.raises(InvalidTime, match="clock time must be between 0 and 253402300799"):
        immediate(clock.set(t))
    with pytest.raises(InvalidTime):
        FakeClock(t)
    assert clock.now() == FAKE_START


def test_clock_fake_clock_advance_is_checked_too() -> None:
    clock = FakeClock(MAX_TIME)
    with pytest.raises(InvalidTime):
        immediate(clock.advance(1))
    assert clock.now() == MAX_TIME


class _Source:
    """A stand-in for `time.time` that the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_clock_offset_clock_runs_with_the_system_clock() -> None:
    source = _Source()
    clock = OffsetClock(source=source)
    assert clock.now() == 1000.0
    source.t = 1010.0
    assert clock.now() == 1010.0
    assert repr(clock) == "OffsetClock(offset=0.0)"


def test_clock_offset_clock_set_and_advance_move_the_offset() -> None:
    source = _Source()
    clock = OffsetClock(source=source)
    assert immediate(clock.set(FAKE_START)) == FAKE_START
    assert clock.offset == FAKE_START - 1000.0
    source.t += 5
    assert clock.now() == FAKE_START + 5
    assert immediate(clock.advance(60)) == FAKE_START + 65
    assert immediate(clock.advance(-65)) == FAKE_START


def test_clock_offset_clock_rejects_times_a_datetime_cannot_hold() -> None:
    clock = OffsetClock(5.0, source=_Source())
    with pytest.raises(InvalidTime):
        immediate(clock.set(math.nan))
    with pytest.raises(InvalidTime):
        immediate(clock.advance(-2000))
    assert clock.now() == 1005.0


def test_clock_offset_clock_defaults_to_wall_time() -> None:
    before = time.time()
    assert before <= OffsetClock().now() <= time.time()
