"""Duration rules and the gateway's texts for failed creates (R6)."""

from __future__ import annotations

import pytest

from mockserver.domain import SessionKind, duration_failure, expiry_failure, upstream_failure
from tests.domain.conftest import T0

GO_ERROR = "json: cannot unmarshal number {n} into Go struct field OpenSessionRequest.sessionDuration of type int64"


def _failure(kind: SessionKind, duration: int) -> str:
    """The chain's refusal first, then the gateway's own date arithmetic (after the chain opened it)."""
    result = duration_failure(kind, duration, minimum=300) or expiry_failure(T0, duration)
    assert result is not None
    return result.detail


@pytest.mark.parametrize("duration", [300, 3600, 10**11], ids=["minimum", "hour", "3000-years"])
def test_upstream_accepts_durations_from_the_minimum_to_the_year_9999(duration: int) -> None:
    assert duration_failure(SessionKind.MODEL, duration, minimum=300) is None
    assert expiry_failure(T0, duration) is None


@pytest.mark.parametrize(
    ("kind", "what"), [(SessionKind.MODEL, "session"), (SessionKind.BID, "bid session")], ids=["model", "bid"]
)
@pytest.mark.parametrize(
    ("duration", "status", "error"),
    [
        (299, 500, "SessionTooShort"),
        (1, 500, "SessionTooShort"),
        (-5, 500, "SessionTooShort"),
        (-(2**63), 500, "SessionTooShort"),
        (2**63, 400, GO_ERROR.format(n=2**63)),
        (-(2**63) - 1, 400, GO_ERROR.format(n=-(2**63) - 1)),
        (10**30, 400, GO_ERROR.format(n=10**30)),
    ],
    ids=["299", "1", "negative", "int64-min", "int64-overflow", "int64-underflow", "huge"],
)
def test_upstream_duration_failures(kind: SessionKind, what: str, duration: int, status: int, error: str) -> None:
    expected = f'Error from proxy router: Failed to create {what}: HTTP {status}: {{"error":"{error}"}}'
    assert _failure(kind, duration) == expected


@pytest.mark.parametrize(
    ("duration", "detail"),
    [
        (3 * 10**11, "Unexpected error: date value out of range"),
        (10**14, "Unexpected error: days=1157407407; must have magnitude <= 999999999"),
        (2**63 - 1, "Unexpected error: Python int too large to convert to C int"),
    ],
    ids=["beyond-9999", "timedelta-days", "timedelta-int"],
)
def test_upstream_date_overflow_is_the_gateways_python_error(duration: int, detail: str) -> None:
    assert _failure(SessionKind.MODEL, duration) == _failure(SessionKind.BID, duration) == detail


def test_upstream_failure_body_is_json() -> None:
    assert upstream_failure(SessionKind.MODEL, 500, 'say "hi" ü').detail == (
        'Error from proxy router: Failed to create session: HTTP 500: {"error":"say \\"hi\\" ü"}'
    )
