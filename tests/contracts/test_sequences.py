"""The suite's memory of a run: the transitions of a key's session it tried, and every session id it saw."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from contracts import test_conformance
from contracts.answers import RuleBroken
from contracts.api import BID_SESSION, CLOSE, MODEL_SESSION, PING
from contracts.client import Client
from contracts.ids import SessionIds
from contracts.safety import Ledger
from contracts.summary import Summary
from contracts.transitions import ONE_KEY, TRANSITIONS, TWO_KEYS, Action, Coverage, State, merge
from tests.live import LiveServer

KEY, OTHER = "sk-AbC123." + "0" * 64, "sk-XyZ789." + "1" * 64
S1, S2 = "0x" + "a1" * 32, "0x" + "b2" * 32


def _answer(path: str, body: object, *, key: str = KEY, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response.request = requests.Request(
        "POST", f"http://127.0.0.1:1{path}", headers={"Authorization": f"Bearer {key}"}
    ).prepare()
    return response


def test_the_table_names_each_transition_once_and_what_it_needs() -> None:
    assert len(ONE_KEY) == 18
    assert len(TWO_KEYS) == 4
    assert len({transition.name for transition in TRANSITIONS}) == len(TRANSITIONS)
    switch = next(t for t in ONE_KEY if (t.source, t.action) == (State.A, Action.FAIL_SWITCH))
    assert switch.name == "model A -[modelsession B refused by the chain]-> failed switch"
    assert switch.needs == {"two models"}
    assert not switch.opens
    bid = next(t for t in ONE_KEY if (t.source, t.action) == (State.BID, Action.BID))
    assert bid.needs == {"bids"}
    assert bid.opens
    assert TWO_KEYS[0].name.endswith("(other key: model A)")
    assert "two keys" in TWO_KEYS[0].needs


def test_coverage_says_why_a_transition_was_not_tried() -> None:
    coverage = Coverage()
    coverage.try_(ONE_KEY[:2])
    reasons = coverage.report(frozenset({"two models", "two keys"}), cap=None)["transitions"]
    assert isinstance(reasons, dict)
    assert reasons[ONE_KEY[0].name] is None
    assert reasons[ONE_KEY[-1].name] == "not reached in the state machine's runs"
    assert reasons["model A -[bidsession]-> bid"] == "the target offers no bids"
    coverage.starved.add(ONE_KEY[-1].name)
    reasons = coverage.report(frozenset({"two models", "bids", "two keys"}), cap=10)["transitions"]
    assert isinstance(reasons, dict)
    assert reasons[ONE_KEY[-1].name] == "the session cap (10) left no session for it"
    assert reasons["model A -[closesession]-> closed"] == "the session cap (10) left no session to reach it"
    assert [t.name for t in coverage.untried(ONE_KEY[:3])] == [ONE_KEY[2].name]


def test_workers_reports_merge_and_the_summary_prints_them() -> None:
    first = {"transitions": {"a": None, "b": "the target offers no bids"}, "longest": 7}
    second = {"transitions": {"a": "not reached", "b": None, "c": "not reached"}, "longest": 12}
    assert merge([first, second, {"transitions": None}]) == ({"a": None, "b": None, "c": "not reached"}, 12)
    summary = Summary()
    summary.workers = [first]
    assert summary._transition_lines() == [
        "transitions: 1/2 tried; longest sequence sent: 7 requests",
        "  NOT TRIED b: the target offers no bids",
    ]
    summary.workers = [{"longest": 0}]
    assert summary._transition_lines() == []


def test_an_answer_may_not_name_another_keys_session() -> None:
    ids = SessionIds()
    ids.observe(_answer(MODEL_SESSION.path, {"session_id": S1, "model": "m"}))
    with pytest.raises(RuleBroken, match=r"R7 broken: .* which this run saw as key sk-AbC123…'s"):
        ids.observe(_answer(PING.path, {"status": "alive", "session_id": S1}, key=OTHER))
    assert ids.model_of(S1) == "m"
    assert ids.model_of(None) is None


def test_an_ended_session_never_comes_back() -> None:
    ids = SessionIds()
    mark = ids.mark()
    ids.observe(_answer(BID_SESSION.path, {"session_id": S1}))
    assert ids.seen_before(S1, ids.mark())
    assert not ids.seen_before(S1, mark)
    ids.observe(_answer(CLOSE.path, {"message": "Session closed successfully", "session_id": S1}))
    with pytest.raises(RuleBroken, match=r"R4 broken: .* ended earlier in this run \(closed\)"):
        ids.observe(_answer(MODEL_SESSION.path, {"session_id": S1, "model": "m"}))
    ids.observe(_answer(PING.path, {"status": "expired", "session_id": S2}))
    with pytest.raises(RuleBroken, match=r"R6 broken: .* \(expired\)"):
        ids.observe(_answer(CLOSE.path, {"message": "Expired session marked as inactive", "session_id": S2}))


def test_answers_that_name_no_session_are_passed_over() -> None:
    ids = SessionIds()
    ids.observe(_answer("/api/v1/models", {"session_id": S1}))
    ids.observe(_answer(MODEL_SESSION.path, {"detail": "boom"}, status=500))
    ids.observe(_answer(PING.path, "not json"))
    ids.observe(_answer(PING.path, ["a", "list"]))
    ids.observe(_answer(CLOSE.path, {"message": "No active session found to close", "session_id": None}))
    assert ids.owner == {}
    assert ids.answers == 5


def test_a_generated_modelsession_is_not_steered_when_a_ping_is_not_json() -> None:
    async def text(request: Request) -> Response:
        return PlainTextResponse("not json")

    with LiveServer(Starlette(routes=[Route(PING.path, text, methods=["POST"])])) as server:
        run = SimpleNamespace(ledger=Ledger(cap=5), keys=(KEY,), client=Client(server.url, (KEY,), None))
        case = SimpleNamespace(operation=SimpleNamespace(path=MODEL_SESSION.path), query={"model_id": "m"})
        assert test_conformance._reuses(case, cast(Any, run)) is None
        assert case.query == {"model_id": "m"}
