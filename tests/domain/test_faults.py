"""The fault plan: counts, key-before-global precedence, latency sums, clearing, validation."""

from __future__ import annotations

import math

import pytest

from mockserver.domain import DEFAULT_MESSAGES, Fault, FaultKind, FaultPlan, InvalidFault, immediate
from tests.domain.conftest import KEY, OTHER_KEY

CREATE = FaultKind.CREATE_FAIL
LATENCY = FaultKind.LATENCY
MODEL_SESSION = "create_model_session_api_v1_session_modelsession_post"
PING = "ping_session_api_v1_session_pingsession_post"


def test_faults_nothing_armed_means_nothing_taken() -> None:
    plan = FaultPlan()
    assert immediate(plan.take(CREATE, KEY)) is None
    assert immediate(plan.latency(KEY, PING)) == 0.0
    assert plan.list() == ()


def test_faults_count_limits_the_uses() -> None:
    plan = FaultPlan()
    armed = immediate(plan.arm(CREATE, count=2))
    assert armed == Fault(CREATE, None, 2, "provider unavailable")
    assert immediate(plan.take(CREATE, KEY)) == armed
    assert plan.list() == (Fault(CREATE, None, 1, "provider unavailable"),)
    assert immediate(plan.take(CREATE, OTHER_KEY)) is not None
    assert immediate(plan.take(CREATE, KEY)) is None
    assert plan.list() == ()


def test_faults_without_count_last_until_cleared() -> None:
    plan = FaultPlan()
    armed = immediate(plan.arm(FaultKind.PING_DEAD))
    assert all(immediate(plan.take(FaultKind.PING_DEAD, KEY)) == armed for _ in range(5))
    assert immediate(plan.clear()) == 1
    assert immediate(plan.take(FaultKind.PING_DEAD, KEY)) is None


def test_faults_only_the_armed_kind_matches() -> None:
    plan = FaultPlan()
    immediate(plan.arm(FaultKind.CLOSE_FAIL))
    assert immediate(plan.take(CREATE, KEY)) is None
    assert immediate(plan.take(FaultKind.CLOSE_FAIL, KEY)) is not None


def test_faults_key_specific_beats_global_whatever_the_order() -> None:
    plan = FaultPlan()
    immediate(plan.arm(CREATE, message="global"))
    immediate(plan.arm(CREATE, key=KEY, count=1, message="mine"))
    assert [immediate(plan.take(CREATE, KEY)) for _ in range(2)] == [
        Fault(CREATE, KEY, 1, "mine"),
        Fault(CREATE, None, None, "global"),
    ]


def test_faults_key_specific_fault_ignores_other_keys() -> None:
    plan = FaultPlan()
    immediate(plan.arm(CREATE, key=KEY))
    assert immediate(plan.take(CREATE, OTHER_KEY)) is None
    assert immediate(plan.take(CREATE, KEY)) is not None


def test_faults_oldest_first_among_equals() -> None:
    plan = FaultPlan()
    immediate(plan.arm(CREATE, count=1, message="first"))
    immediate(plan.arm(CREATE, count=1, message="second"))
    assert [f.message for f in (immediate(plan.take(CREATE, KEY)), immediate(plan.take(CREATE, KEY))) if f] == [
        "first",
        "second",
    ]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (FaultKind.CREATE_FAIL, "provider unavailable"),
        (FaultKind.PING_DEAD, "Server error '500 Internal Server Error' for url 'http://proxy-router:8082/v1/"),
        (FaultKind.PING_ERROR, "database is locked"),
        (FaultKind.APPROVE_ERROR, "insufficient funds for gas"),
    ],
    ids=lambda v: v.name if isinstance(v, FaultKind) else "",
)
def test_faults_default_messages(kind: FaultKind, message: str) -> None:
    fault = immediate(FaultPlan().arm(kind))
    assert fault.message is not None
    assert fault.message.startswith(message)
    assert fault.message == DEFAULT_MESSAGES[kind]


def test_faults_ping_dead_default_is_httpx_text() -> None:
    assert DEFAULT_MESSAGES[FaultKind.PING_DEAD].endswith(
        "\nFor more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/500"
    )


@pytest.mark.parametrize("kind", [FaultKind.VERIFY_FAIL, FaultKind.CLOSE_FAIL, LATENCY], ids=lambda k: k.name)
def test_faults_fixed_text_kinds_have_no_message(kind: FaultKind) -> None:
    assert immediate(FaultPlan().arm(kind)).message is None


def test_faults_own_message_wins() -> None:
    assert immediate(FaultPlan().arm(CREATE, message="")).message == ""


def test_faults_latency_sums_matching_faults_and_uses_them() -> None:
    plan = FaultPlan()
    immediate(plan.arm(LATENCY, seconds=0.5))
    immediate(plan.arm(LATENCY, seconds=1, count=1, key=KEY))
    immediate(plan.arm(LATENCY, seconds=2, count=1, operation=PING))
    immediate(plan.arm(LATENCY, seconds=4, key=OTHER_KEY))
    assert immediate(plan.latency(KEY, PING)) == 3.5
    assert immediate(plan.latency(KEY, PING)) == 0.5
    assert immediate(plan.latency(KEY, MODEL_SESSION)) == 0.5
    assert immediate(plan.latency(OTHER_KEY, MODEL_SESSION)) == 4.5
    assert len(plan.list()) == 2


def test_faults_latency_operation_specific_beats_all_operations_on_take() -> None:
    plan = FaultPlan()
    immediate(plan.arm(LATENCY, seconds=1))
    immediate(plan.arm(LATENCY, seconds=2, operation=PING))
    immediate(plan.arm(LATENCY, seconds=3, key=KEY))
    assert [
        f.seconds
        for f in (immediate(plan.take(LATENCY, KEY, PING)), immediate(plan.take(LATENCY, OTHER_KEY, PING)))
        if f
    ] == [3, 2]
    taken = immediate(plan.take(LATENCY, OTHER_KEY, MODEL_SESSION))
    assert taken is not None
    assert taken.seconds == 1


def test_faults_clear_by_kind_and_key() -> None:
    plan = FaultPlan()
    immediate(plan.arm(CREATE))
    immediate(plan.arm(CREATE, key=KEY))
    immediate(plan.arm(FaultKind.CLOSE_FAIL, key=KEY))
    immediate(plan.arm(FaultKind.PING_ERROR, key=OTHER_KEY))
    assert immediate(plan.clear(CREATE, KEY)) == 1
    assert immediate(plan.clear(key=OTHER_KEY)) == 1
    assert immediate(plan.clear(FaultKind.CLOSE_FAIL)) == 1
    assert plan.list() == (Fault(CREATE, None, None, "provider unavailable"),)
    assert immediate(plan.clear(FaultKind.LATENCY)) == 0
    assert immediate(plan.clear()) == 1
    assert repr(plan) == "FaultPlan(0 armed)"


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        (CREATE, {"count": 0}, "count must be at least 1"),
        (CREATE, {"count": -3}, "count must be at least 1"),
        (LATENCY, {"seconds": -0.1}, "seconds must be a finite number >= 0, got -0.1"),
        (LATENCY, {"seconds": math.nan}, "seconds must be a finite number >= 0, got nan"),
        (LATENCY, {"seconds": math.inf}, "seconds must be a finite number >= 0, got inf"),
        (CREATE, {"seconds": 1.0}, "seconds and operation apply only to LATENCY faults, not to CREATE_FAIL"),
        (FaultKind.PING_DEAD, {"operation": PING}, "apply only to LATENCY faults, not to PING_DEAD"),
    ],
    ids=["count-zero", "count-negative", "seconds-negative", "seconds-nan", "seconds-inf", "seconds-on-create", "op"],
)
def test_faults_arm_validates(kind: FaultKind, options: dict[str, float], message: str) -> None:
    plan = FaultPlan()
    with pytest.raises(InvalidFault, match=message.replace("(", r"\(")):
        immediate(plan.arm(kind, **options))  # type: ignore[arg-type]
    assert plan.list() == ()


def test_faults_to_json() -> None:
    fault = immediate(FaultPlan().arm(LATENCY, key=KEY, count=3, seconds=2, operation=PING))
    assert fault.to_json() == {
        "kind": "latency",
        "key": KEY,
        "remaining": 3,
        "message": None,
        "seconds": 2.0,
        "operation": PING,
        "status": None,
        "body": None,
        "retries": False,
        "until": None,
    }


def test_faults_status_and_body_choose_the_upstream_answer() -> None:
    fault = immediate(FaultPlan().arm(FaultKind.CREATE_FAIL, status=400, body='{"error":"x"}'))
    assert (fault.status, fault.body) == (400, '{"error":"x"}')
    with pytest.raises(InvalidFault, match="only to create_fail, approve_error"):
        immediate(FaultPlan().arm(FaultKind.PING_DEAD, status=500))
    with pytest.raises(InvalidFault, match="400-599"):
        immediate(FaultPlan().arm(FaultKind.CREATE_FAIL, status=200))
