"""Session values: expiry at the boundary (R6), ending, JSON form."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest

from mockserver.domain import EndReason, Session, SessionKind
from tests.domain.conftest import KEY, MISTRAL, T0

SESSION = Session("0x" + "1" * 64, KEY, SessionKind.MODEL, MISTRAL, "mistral-31-24b", T0, T0 + 3600)


@pytest.mark.parametrize(
    ("now", "expired"),
    [(T0, False), (T0 + 3600, False), (T0 + 3600.001, True), (T0 + 7200, True)],
    ids=["created", "r6-at-expiry-alive", "r6-just-after-expired", "long-after"],
)
def test_session_expiry_is_strictly_after_expires_at(now: float, expired: bool) -> None:
    assert SESSION.is_expired(now) is expired


def test_session_is_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        SESSION.model = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "reason"),
    [(T0 + 10, EndReason.SWITCHED), (T0 + 3600, EndReason.CLOSED), (T0 + 3601, EndReason.EXPIRED)],
    ids=["alive-keeps-reason", "at-expiry-keeps-reason", "r6-expired-ends-as-expired"],
)
def test_session_ended_builds_a_new_value(now: float, reason: EndReason) -> None:
    given = EndReason.CLOSED if now == T0 + 3600 else EndReason.SWITCHED
    ended = SESSION.ended(now, given)
    assert (ended.closed_at, ended.close_reason) == (now, reason)
    assert SESSION.closed_at is None
    assert ended.session_id == SESSION.session_id


def test_session_to_json_is_plain_json() -> None:
    data = SESSION.ended(T0 + 4000, EndReason.CLOSED).to_json(T0 + 4000)
    assert data == {
        "session_id": SESSION.session_id,
        "key": KEY,
        "kind": "model",
        "model": MISTRAL,
        "requested": "mistral-31-24b",
        "created_at": T0,
        "expires_at": T0 + 3600,
        "closed_at": T0 + 4000,
        "close_reason": "expired",
        "expired": True,
    }
    assert type(data["kind"]) is str
    assert type(data["close_reason"]) is str
    assert json.loads(json.dumps(data)) == data


def test_session_to_json_of_an_active_session() -> None:
    data = SESSION.to_json(T0)
    assert (data["closed_at"], data["close_reason"], data["expired"]) == (None, None, False)


def test_session_reasons_are_strings() -> None:
    assert [str(r) for r in EndReason] == [
        "switched",
        "deactivated",
        "closed",
        "expired",
        "dead",
        "verify_failed",
        "chain_closed",
    ]
    assert [str(k) for k in SessionKind] == ["model", "bid"]
