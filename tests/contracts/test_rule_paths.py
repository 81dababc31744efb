"""The suite's rule checks on their rare paths, in-process: the state machine's steps, the fixed scenarios,
R8, the failed switch and the differential run, each driven against a gateway served on a loopback port
(the mock, one of the gallery's broken ones, or a tiny fake) that makes the path happen."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis.errors import Flaky
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts import (
    machine,
    test_concurrency,
    test_differential,
    test_errors,
    test_failure_paths,
    test_rule_scenarios,
    test_session_rules,
)
from contracts.answers import AnswerError, RuleBroken
from contracts.api import CHAT, CLOCK, CLOSE, EMBEDDINGS, LIST_MODELS, MODEL_SESSION, PING
from contracts.budget import Budget
from contracts.chat import automation_path
from contracts.client import Client
from contracts.machine import Carry, SessionRules
from contracts.runtime import Run
from contracts.safety import Ledger
from contracts.settings import MOCK_KEYS, Settings
from contracts.target import open_run
from contracts.test_rule_scenarios import Held, Keys, Steps
from contracts.transitions import Action, State
from mockserver.config import Config
from mockserver.web.app import create_app
from tests.gallery.variants import VARIANTS
from tests.live import LiveServer

KEY = MOCK_KEYS[0]
SESSION_ID = "0x" + "ab" * 32
MODEL = "mistral-31-24b"


def _mock(variant: str | None = None, **config: Any) -> ASGIApp:
    app = create_app(Config(keys=MOCK_KEYS, **{"admin": True, **config}))
    return VARIANTS[variant].apply(app) if variant else app


@contextmanager
def _run(app: ASGIApp, **settings: Any) -> Iterator[Run]:
    """A contract run against `app` served on a loopback port, as the suite opens one against a URL."""
    with LiveServer(app) as server:
        settings = {"rate_limit": 0, "max_sessions": 0, "bid_ids": ("0x" + "b1" * 32,), **settings}
        run = open_run(Settings(base_url=server.url, api_keys=MOCK_KEYS, **settings))
        yield run


def _machine(run: Run, checked: list[str], monkeypatch: pytest.MonkeyPatch) -> SessionRules:
    """The state machine outside Hypothesis: its steps called one by one (their notes collected)."""
    monkeypatch.setattr("contracts.machine.note", lambda text: None)
    machine = SessionRules(run, run.keys, Budget(run, "test"), checked.append)
    machine.start_clean()
    return machine


def _ping(run: Run, key: str = KEY) -> dict[str, Any]:
    body: dict[str, Any] = run.client.post(PING.path, key=key).json()
    return body


def test_a_modelsession_that_echoes_another_model_fails_the_machine_and_the_scenario(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _run(_mock("model-echoes-resolved-id")) as run:
        with pytest.raises(AnswerError, match=r"`model` must echo the model_id sent \('mistral-31-24b'\)"):
            _machine(run, [], monkeypatch).create_model_session(0, MODEL, 300)
        steps = Steps(run, KEY, Budget(run, "test"), Held())
        with pytest.raises(AnswerError, match=r"modelsession must echo the model_id sent \('mistral-31-24b'\)"):
            steps.model(MODEL, "R1")


def _foreign_prefix_gateway() -> Starlette:
    async def create(request: Request) -> Response:
        body = {"success": True, "message": "Session created and associated with API key", "session_id": SESSION_ID}
        return JSONResponse({**body, "api_key_prefix": "sk-Other1", "model": request.query_params["model_id"]})

    return Starlette(routes=[Route(MODEL_SESSION.path, create, methods=["POST"])])


def test_a_modelsession_that_names_another_keys_prefix_fails_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("contracts.machine.note", lambda text: None)
    with LiveServer(_foreign_prefix_gateway()) as server:
        settings = Settings(base_url=server.url, api_keys=(KEY,), rate_limit=0)
        client = Client(server.url, (KEY,), None)
        run = Run(settings, server.url, (KEY,), client, Ledger(None), False, False, {MODEL: "0x" + "8e" * 32})
        machine = SessionRules(run, run.keys, Budget(run, "test"), lambda rule: None)
        with pytest.raises(AnswerError, match=r"api_key_prefix 'sk-Other1' is not the key's"):
            machine._create_model_session(KEY, MODEL, 300)


def test_a_switch_that_keeps_the_old_session_breaks_r2(monkeypatch: pytest.MonkeyPatch) -> None:
    with _run(_mock("switch-keeps-old")) as run:
        machine = _machine(run, [], monkeypatch)
        first, second = run.model_names[:2]
        assert run.models[first] != run.models[second]
        machine.create_model_session(0, first, 300)
        with pytest.raises(RuleBroken, match=r"^R2 broken: modelsession must open a new session here .* on another"):
            machine.create_model_session(0, second, 300)


def test_a_ping_after_the_expiry_and_before_the_sync_is_expired_r6(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock is set just past a sync pass, so that the session expires 30 s before the next one."""
    checked: list[str] = []
    with _run(_mock()) as run:
        machine = _machine(run, checked, monkeypatch)
        assert run.client.put(CLOCK.path, json={"now": 6010.0}).status_code == 200
        machine.create_model_session(0, MODEL, 300)
        run.advance_clock(330)  # 6340: expired at 6310, the next pass is at 6360
        machine.ping_session(0)
        assert machine.oracle.book(KEY).session is None
        assert machine.oracle.book(KEY).ended_by == "R6"
    assert checked.count("R6") == 1


@pytest.mark.parametrize("operation", [CHAT, EMBEDDINGS], ids=["chat-403", "embeddings-500"])
def test_a_chat_refused_for_automation_opens_nothing_c3(operation: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    with _run(_mock()) as run:
        machine = _machine(run, checked, monkeypatch)
        machine.create_model_session(0, MODEL, 3600)  # alive, on a chat model: embeddings need a new session
        other = next(name for name in run.model_names if run.models[name] != run.models[MODEL])
        assert run.client.put(automation_path(KEY), json={"enabled": False}).status_code == 200
        machine._chat(operation, KEY, None if operation is EMBEDDINGS else other)
        assert _ping(run)["status"] in ("dead", "no_session")  # closed on chain first, as v1.14.0 did
    assert checked[-1] == "C3"
    assert (machine.oracle.book(KEY).session, machine.oracle.book(KEY).ended_by) == (None, "C3")


def test_without_fault_control_the_machine_starts_by_closing_every_keys_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _run(_mock(admin=False)) as run:
        assert not run.controls_faults
        body = {"sessionDuration": 300}
        for key in MOCK_KEYS:
            run.client.post(MODEL_SESSION.path, key=key, params={"model_id": MODEL}, json=body)
        _machine(run, [], monkeypatch)
        assert [_ping(run, key)["status"] for key in MOCK_KEYS] == ["no_session", "no_session"]


def test_the_state_machine_failing_says_how_to_replay_it() -> None:
    checked: list[str] = []
    with (
        _run(_mock("reuse-opens-new"), stateful_runs=5, max_sessions=100) as run,
        pytest.raises(RuleBroken, match="R1") as broken,
    ):
        test_session_rules._run(run, run.keys[:1], Budget(run, "test"), checked.append)
    assert any("derandomized" in note for note in broken.value.__notes__)


def _racy_gateway() -> Starlette:
    """Every modelsession opens a session of its own: a burst leaves several."""
    opened: list[str] = []

    async def create(request: Request) -> Response:
        opened.append(f"0x{len(opened):064x}")
        body = {"success": True, "message": "Session created and associated with API key", "session_id": opened[-1]}
        return JSONResponse({**body, "api_key_prefix": KEY[:9], "model": request.query_params["model_id"]})

    async def close(request: Request) -> Response:
        return JSONResponse({"success": True, "message": "No active session found to close", "session_id": None})

    routes = [Route(MODEL_SESSION.path, create, methods=["POST"]), Route(CLOSE.path, close, methods=["POST"])]
    return Starlette(routes=routes)


def test_a_burst_that_opens_several_sessions_breaks_r8() -> None:
    with LiveServer(_racy_gateway()) as server:
        settings = Settings(base_url=server.url, api_keys=(KEY,), rate_limit=0, max_sessions=0)
        run = Run(settings, server.url, (KEY,), Client(server.url, (KEY,), None), Ledger(None), False, False)
        with pytest.raises(RuleBroken, match=r"^R8 broken: 3 parallel modelsession calls on one model returned 3"):
            test_concurrency._one_model_burst(run, Budget(run, "test"), {"model_id": MODEL}, 3)


def _lists(models: list[dict[str, Any]], app: ASGIApp) -> ASGIApp:
    """`app`, except that GET /api/v1/models lists `models`."""
    listing = JSONResponse({"object": "list", "data": models})

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == LIST_MODELS.path:
            await listing(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


def test_checks_that_need_a_listed_model_skip_saying_so_when_none_is_listed() -> None:
    with _run(_lists([], _mock())) as run:
        assert run.model_names == []
        budget, checked = Budget(run, "test"), list[str]()
        with pytest.raises(pytest.skip.Exception, match="the target lists no models"):
            test_errors.test_a_duration_the_chain_refuses_is_the_gateways_500(run)
        with pytest.raises(pytest.skip.Exception, match="the target lists no models"):
            test_concurrency.test_r8_parallel_modelsessions_on_one_model_share_one_session(run, budget, checked.append)
        with pytest.raises(pytest.skip.Exception, match="the target lists no models"):
            next(inspect.unwrap(test_rule_scenarios.keys)(run, budget, {}))
        with pytest.raises(pytest.skip.Exception, match="the target lists one model: a switch needs two"):
            test_failure_paths.test_a_failed_switch_leaves_the_old_session_dead_until_the_sync(
                run, budget, checked.append
            )
    assert checked == []


def _rolling_back_gateway() -> Starlette:
    """A gateway whose failed switch leaves the old session alive (it rolls back the chain as well)."""
    held: dict[str, str | None] = {"session": None}
    opened = iter(range(1, 100))

    async def create(request: Request) -> Response:
        if (await request.json())["sessionDuration"] < 300:
            return JSONResponse({"detail": machine.REFUSED + "SessionTooShort"}, status_code=500)
        held["session"] = session_id = f"0x{next(opened):064x}"
        body = {"success": True, "message": "Session created and associated with API key", "session_id": session_id}
        return JSONResponse({**body, "api_key_prefix": KEY[:9], "model": request.query_params["model_id"]})

    async def ping(request: Request) -> Response:
        if held["session"] is None:
            return JSONResponse(
                {"status": "no_session", "message": "No active session found for this API key", "success": False}
            )
        return JSONResponse(
            {"status": "alive", "message": "Session is alive", "session_id": held["session"], "success": True}
        )

    async def close(request: Request) -> Response:
        held["session"] = None
        return JSONResponse({"success": True, "message": "No active session found to close", "session_id": None})

    routes = [
        Route(MODEL_SESSION.path, create, methods=["POST"]),
        Route(PING.path, ping, methods=["POST"]),
        Route(CLOSE.path, close, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def test_a_failed_switch_that_leaves_the_old_session_alive_breaks_r5() -> None:
    with LiveServer(_rolling_back_gateway()) as server:
        settings = Settings(base_url=server.url, api_keys=(KEY,), rate_limit=0, max_sessions=0)
        models = {"m": "0x" + "1" * 64, "n": "0x" + "2" * 64}
        run = Run(settings, server.url, (KEY,), Client(server.url, (KEY,), None), Ledger(None), False, False, models)
        checked: list[str] = []
        with pytest.raises(RuleBroken, match=r"^R5 broken: after a failed switch a ping must answer one of .*'alive'"):
            test_failure_paths.test_a_failed_switch_leaves_the_old_session_dead_until_the_sync(
                run, Budget(run, "test"), checked.append
            )
    assert checked == []  # a broken rule is never recorded as checked


def _asked(diff_against: str) -> Any:
    """What the differential test reads of pytest's request: --diff-against, and no --diff-api-key."""
    return SimpleNamespace(config=SimpleNamespace(option=SimpleNamespace(diff_against=diff_against, diff_api_key=[])))


def test_the_differential_run_passes_a_faithful_target_and_fails_a_broken_one() -> None:
    with _run(_mock()) as run:
        test_differential.test_the_target_answers_like_the_other_one(_asked("mock"), run)
        differs = pytest.raises(AssertionError, match=r"step\(s\) differ; the first:\n +#\d+ bad_(json|body) ")
        with LiveServer(_mock("422-detail-string")) as broken, differs:
            test_differential.test_the_target_answers_like_the_other_one(_asked(broken.url), run)


def test_after_a_failed_switch_the_machine_follows_v1_14_0(monkeypatch: pytest.MonkeyPatch) -> None:
    """observed-v1.14.0.md 1.1: a create on the old model fails verification (the row survives); another
    model after it, or a bid, is left to `explore`; with no budget left a create that would open is not sent."""
    checked: list[str] = []
    with _run(_mock()) as run:
        machine = _machine(run, checked, monkeypatch)
        first, second = run.model_names[:2]
        machine.create_model_session(0, first, 300)
        assert machine._state(KEY, run.now()) is State.A
        machine._fail_switch(KEY, second)
        assert machine._state(KEY, run.now()) is State.FAILED
        sent = machine.sent
        machine.create_model_session(0, second, 300)  # failed -> model B is explore's
        machine.create_bid_session(0, run.bids[0], 300)  # never observed on v1.14.0: not sent
        assert machine.sent == sent
        machine.create_model_session(0, first, 300)  # the row is reused, the chain says closed
        assert machine._state(KEY, run.now()) is State.FAILED
        assert "R1" in checked
        machine.ping_session(0)
        assert machine._state(KEY, run.now()) is State.CLOSED
        run.ledger.cap = len(run.ledger.opened)  # the cap reached: a create that would open is held back
        machine.create_model_session(0, second, 300)
        assert machine.sent == sent + 2


def test_the_machine_leaves_out_what_the_table_does_not_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """An expired session is no state of the table, and with every key there `explore` sends nothing; a
    target without bids offers no bid transition."""
    with _run(_mock()) as run:
        machine = _machine(run, [], monkeypatch)
        machine.create_model_session(0, run.model_names[0], 300)
        monkeypatch.setattr(Run, "bids", property(lambda self: ()))
        assert {transition.action for _, transition in machine._candidates()} == {
            Action.MODEL_A,
            Action.MODEL_A_OTHER_DURATION,
            Action.MODEL_B,
            Action.PING,
            Action.CLOSE,
            Action.FAIL_SWITCH,
        }
        run.advance_clock(301)
        machine.moved += 1  # as its own clock step counts the move (the clock is read once between requests)
        assert machine._state(KEY, run.now()) is None
        machine.keys = machine.keys[:1]
        sent = machine.sent
        machine.explore(cast(Any, None))
        assert machine.sent == sent


def test_a_replay_that_goes_otherwise_without_a_remembered_failure_stays_flaky(monkeypatch: pytest.MonkeyPatch) -> None:
    def flaky(*args: object, **kwargs: object) -> None:
        raise Flaky("the replay went otherwise")

    monkeypatch.setattr(test_session_rules, "run_state_machine_as_test", flaky)
    monkeypatch.setattr(test_session_rules, "_settings", lambda run: None)
    with pytest.raises(Flaky):
        test_session_rules._run_machine(SessionRules, cast(Run, None), None)
    carry = Carry(failure=RuleBroken("R1", "the first failure"))
    with pytest.raises(RuleBroken, match="the first failure"):
        test_session_rules._run_machine(SessionRules, cast(Run, None), carry)


def test_a_runs_teardown_clears_the_faults_it_armed_from_the_oracle_it_hands_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under a cap the oracle goes on to the next run: faults the teardown disarmed are not pending there."""
    with _run(_mock()) as run:
        machine = _machine(run, [], monkeypatch)
        machine.steer_the_target("close_fail", 0, 61)
        machine.steer_the_target("ping_dead", 0, 61)
        book = machine.oracle.book(KEY)
        assert (book.pending_dead, book.pending_close_fail) == (1, 1)
        machine.teardown()
        assert (book.pending_dead, book.pending_close_fail) == (0, 0)


def test_scenarios_whose_reservation_has_no_more_leave_their_further_opens_out() -> None:
    """R2 with room for its switch only, R4 with none for its open after the close: each still checks its
    rule (and R5 starts from the key R4 left with no session); a key known to hold nothing opens without a
    clean-up close."""
    checked: list[str] = []
    with _run(_mock(), max_sessions=4) as run:
        run.ledger.reserve("r2", 2)
        first = Steps(run, KEY, Budget(run, "r2"), Held())
        test_rule_scenarios.test_r2_another_model_replaces_the_session(run, Keys(first, None), checked.append)
        assert len(run.ledger.opened) == 2  # A and B: no switch back
        held = Held(True, first.now.session_id, first.now.on)
        test_rule_scenarios.test_r4_close_ends_the_session(
            run, Keys(Steps(run, KEY, Budget(run, "r4"), held), None), checked.append
        )
        assert len(run.ledger.opened) == 2  # closed, and nothing opened again
        run.ledger.release("r2")
        closed = Keys(Steps(run, KEY, Budget(run, "r5"), Held(known=True)), None)
        test_rule_scenarios.test_r5_ping_reports_the_session_and_a_dead_one_is_closed(run, closed, checked.append)
        assert checked == ["R2", "R4", "R5"]  # R5 pinged no_session first: R4 left the key with none
        steps = Steps(run, KEY, Budget(run, "r2"), Held(known=True))
        steps.session_on(run.model_names[0], "R1")
        assert steps.sent == 1  # no close first: the key is known to hold nothing


def test_a_failed_switch_from_model_b_is_no_transition_of_the_table() -> None:
    """The failed switch starts from the live session an earlier check left, on model B here: judged the same,
    but the table's failed switch starts on model A, so it is not counted as tried."""
    checked: list[str] = []
    with _run(_mock()) as run:
        on_b = run.client.post(
            MODEL_SESSION.path, key=KEY, params={"model_id": run.model_names[1]}, json={"sessionDuration": 300}
        )
        assert on_b.status_code == 200
        test_failure_paths.test_a_failed_switch_leaves_the_old_session_dead_until_the_sync(
            run, Budget(run, "test"), checked.append
        )
    assert checked == ["R2", "R5"]
    assert not any("failed switch" in name for name in run.coverage.tried)
