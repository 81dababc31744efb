"""The domain refuses out-of-range values itself: the fixture reaches it without admin.yaml's schemas."""

from __future__ import annotations

import pytest

from mockserver.domain import AutomationSettings, InvalidFault, QueuedReply, immediate


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"error_status": 200}, "error status must be 400-599, got 200"),
        ({"break_after": -1}, "break_after must be 0 or more, got -1"),
        ({"chunk_delay": 11.0}, "chunk_delay must be 0-10 seconds, got 11.0"),
    ],
)
def test_a_queued_reply_out_of_range_is_refused(options: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidFault, match=message):
        QueuedReply(**options)  # type: ignore[arg-type]


def test_an_automation_duration_out_of_range_is_refused() -> None:
    with pytest.raises(InvalidFault, match="duration must be 60-86400 seconds, got 59"):
        immediate(AutomationSettings(True).change("sk-AbC123", duration=59))
