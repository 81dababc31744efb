"""Faults that count calls, not requests (SDK retries), and faults that last for a while."""

from __future__ import annotations

import pytest

from mockserver.domain import Attempt, FakeClock, FaultKind, FaultPlan, InvalidFault, immediate
from tests.domain.conftest import KEY, OTHER_KEY

CREATE = FaultKind.CREATE_FAIL
OPERATION = "create_model_session_api_v1_session_modelsession_post"
OTHER_OPERATION = "ping_session_api_v1_session_pingsession_post"


def tries(count: int, operation: str = OPERATION) -> list[Attempt]:
    """One SDK call: the first try, then `count - 1` numbered retries (x-stainless-retry-count 1, 2, ...)."""
    return [Attempt(operation, retry=number > 0) for number in range(count)]


def test_a_fault_for_one_call_breaks_its_retries_too_and_then_disarms() -> None:
    plan = FaultPlan()
    immediate(plan.arm(CREATE, count=1, retries=True))
    assert all(immediate(plan.take(CREATE, KEY, attempt=attempt)) is not None for attempt in tries(3))
    assert [fault.remaining for fault in plan.list()] == [0]  # spent, kept for that call's retries
    assert immediate(plan.take(CREATE, KEY, attempt=Attempt(OPERATION))) is None  # the next call goes through
    assert plan.list() == ()


def test_without_retries_a_count_is_spent_by_the_sdks_own_retries() -> None:
    plan = FaultPlan()
    immediate(plan.arm(CREATE, count=5))
    assert all(immediate(plan.take(CREATE, KEY, attempt=attempt)) is not None for attempt in tries(3))
    assert [fault.remaining for fault in plan.list()] == [2]  # the complaint, kept as the default


def test_a_count_of_calls_with_retries() -> None:
    plan = FaultPlan()
    immediate(plan.arm(CREATE, count=2, retries=True))
    broken = [
        immediate(plan.take(CREATE, KEY, attempt=attempt)) is not None for attempt in tries(3) + tries(3) + tries(1)
    ]
    assert broken == [True] * 6 + [False]


def test_an_idempotency_key_tells_retries_apart_from_new_calls() -> None:
    plan = FaultPlan()
    immediate(plan.arm(CREATE, count=1, retries=True))
    assert immediate(plan.take(CREATE, KEY, attempt=Attempt(OPERATION, idempotency_key="call-1"))) is not None
    assert immediate(plan.take(CREATE, KEY, attempt=Attempt(OPERATION, idempotency_key="call-1"))) is not None
    assert immediate(plan.take(CREATE, KEY, attempt=Attempt(OPERATION, retry=True, idempotency_key="call-2"))) is None


def test_a_retry_of_another_key_or_operation_is_a_new_call() -> None:
    plan = FaultPlan()
    immediate(plan.arm(CREATE, count=1, retries=True))
    assert immediate(plan.take(CREATE, KEY, attempt=Attempt(OPERATION))) is not None
    assert immediate(plan.take(CREATE, OTHER_KEY, attempt=Attempt(OPERATION, retry=True))) is None
    immediate(plan.arm(CREATE, count=1, retries=True))
    assert immediate(plan.take(CREATE, KEY, attempt=Attempt(OPERATION))) is not None
    assert immediate(plan.take(CREATE, KEY, attempt=Attempt(OTHER_OPERATION, retry=True))) is None


def test_a_lasting_fault_that_covers_retries_keeps_breaking() -> None:
    plan = FaultPlan()
    immediate(plan.arm(CREATE, retries=True))
    assert all(immediate(plan.take(CREATE, KEY, attempt=attempt)) is not None for attempt in tries(3) + tries(2))
    assert [fault.remaining for fault in plan.list()] == [None]


def test_a_fault_with_a_duration_disarms_itself_when_the_clock_passes_it() -> None:
    clock = FakeClock()
    plan = FaultPlan(clock=clock)
    armed = immediate(plan.arm(CREATE, duration=30))
    assert armed.until == clock.now() + 30
    assert armed.to_json()["until"] == clock.now() + 30
    assert immediate(plan.take(CREATE, KEY)) is not None
    immediate(clock.advance(29.5))
    assert immediate(plan.take(CREATE, KEY)) is not None
    immediate(clock.advance(0.5))
    assert immediate(plan.take(CREATE, KEY)) is None
    assert plan.list() == ()


def test_expired_faults_drop_out_of_the_latency_sum_too() -> None:
    clock = FakeClock()
    plan = FaultPlan(clock=clock)
    immediate(plan.arm(FaultKind.LATENCY, seconds=2, duration=10))
    immediate(plan.arm(FaultKind.LATENCY, seconds=1))
    assert immediate(plan.latency(KEY, OPERATION)) == 3
    immediate(clock.advance(10))
    assert immediate(plan.latency(KEY, OPERATION)) == 1


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        (CREATE, {"duration": 0}, "duration must be a finite number of seconds > 0"),
        (CREATE, {"duration": float("inf")}, "duration must be a finite number of seconds > 0"),
        (FaultKind.LATENCY, {"retries": True}, "retries applies to faults that break a call, not to LATENCY"),
    ],
)
def test_retries_and_duration_are_validated(kind: FaultKind, options: dict[str, object], message: str) -> None:
    plan = FaultPlan()
    with pytest.raises(InvalidFault, match=message):
        immediate(plan.arm(kind, **options))  # type: ignore[arg-type]
    assert plan.list() == ()
