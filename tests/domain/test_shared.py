"""Slots and counters in this process: atomic changes by name, a shared sequence."""

from __future__ import annotations

from mockserver.domain import LocalCounter, LocalSlots, immediate


def test_local_slots_change_one_name_at_a_time_and_list_them_sorted() -> None:
    slots: LocalSlots[int] = LocalSlots()
    assert immediate(slots.update("b", lambda current: (2, current))) is None
    assert immediate(slots.update("a", lambda current: (1, "first"))) == "first"
    assert immediate(slots.items()) == [("a", 1), ("b", 2)]
    assert immediate(slots.update("b", lambda current: (None, current))) == 2
    assert (slots.get("b"), repr(slots)) == (None, "LocalSlots(1 names)")


def test_a_local_counter_counts_from_zero() -> None:
    counter = LocalCounter()
    assert [immediate(counter.next()) for _ in range(3)] == [0, 1, 2]
