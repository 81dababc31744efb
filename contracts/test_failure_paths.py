"""A failure the suite provokes itself, judged by the oracle as v1.14.0 answers it (observed-v1.14.0.md 1.1).

A model switch with a duration the chain refuses (299 s) fails after the gateway has closed the old
session on chain; the gateway's row is rolled back, so the next ping reports the OLD session `dead`
(or `no_session` when the gateway's 60-second sync ran in between) and then `no_session`. A create on
another model right after the failure opens a new session (the old row is closed, not reused).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from contracts.answers import RuleBroken, expect, expect_answer
from contracts.api import MODEL_SESSION, PING, labels
from contracts.budget import Budget
from contracts.machine import REFUSED, TOO_SHORT
from contracts.oracle import Oracle
from contracts.runtime import Run
from contracts.transitions import Action, State, Transition


def _create(run: Run, key: str, model: str, duration: int) -> Any:
    params = {"model_id": model}
    return run.client.post(MODEL_SESSION.path, key=key, params=params, json={"sessionDuration": duration})


def _ping(run: Run, key: str) -> tuple[str, str | None]:
    body = expect_answer(PING, run.client.post(PING.path, key=key), rule="R5")
    return body["status"], body.get("session_id")


def _refused(run: Run, key: str, model: str) -> None:
    """A switch to `model` the chain refuses: the gateway's 500 with the upstream's text."""
    detail = expect_answer(MODEL_SESSION, _create(run, key, model, TOO_SHORT), status=500, rule="R2")["detail"]
    expect(detail.startswith(REFUSED), "R2", f"a {TOO_SHORT} s session must be refused upstream, got {detail!r}")


def _held(run: Run) -> tuple[str, str | None, str | None]:
    """A key whose live model session an earlier check left (a ping finds it, the run's ids know its
    model): the failed switch starts from it for free; else the first key, cleaned, and no session."""
    for key in run.keys:
        status, session_id = _ping(run, key)
        model = run.ids.model_of(session_id)
        if status == "alive" and model in run.models:
            run.clear_faults(key)
            return key, session_id, model
    run.fresh(run.keys[0])
    return run.keys[0], None, None


# The switch after the failure opens one session (fixed), and one more (`more=`) opens the session to fail
# from when no earlier check left a key on a model: both fit the example CI job's cap of 10.
@pytest.mark.contract(
    rules=("R2", "R5"), operations=labels(MODEL_SESSION, PING), sessions=1, more=1, needs=("two models",)
)
def test_a_failed_switch_leaves_the_old_session_dead_until_the_sync(
    run: Run, budget: Budget, check: Callable[[str], None]
) -> None:
    names = run.model_names
    if len({run.models[name] for name in names}) < 2:
        pytest.skip("the target lists one model: a switch needs two")
    key, first_id, first = _held(run)
    if first is None or first_id is None:
        budget.need(2, "the session a failed switch starts from", reserved=True)
        first = names[0]
        first_id = expect_answer(MODEL_SESSION, _create(run, key, first, run.settings.session_duration), rule="R2")[
            "session_id"
        ]
    second = next(name for name in names if run.models[name] != run.models[first])
    _refused(run, key, second)
    # Another model right after the failure: the old row is closed (already closed on chain), a new session opens.
    budget.need(1, "the session a switch after a failed one opens", reserved=True)
    mark = run.ids.mark()
    switched = expect_answer(MODEL_SESSION, _create(run, key, second, run.settings.session_duration), rule="R2")
    new = switched["session_id"]
    expect(
        new != first_id and not run.ids.seen_before(new, mark),
        "R2",
        f"after a failed switch to {second}, a modelsession on it returned {new}, not a new session "
        f"(the key's old session was {first_id})",
    )
    if first == names[0]:  # model A to model B as the state machine names them: its failed switch and the exit
        walked = ((State.A, Action.FAIL_SWITCH, State.FAILED), (State.FAILED, Action.MODEL_B, State.B))
        run.coverage.try_(Transition(*step) for step in walked)
    oracle = Oracle(models=dict(run.models), default_model=run.default_model)
    oracle.opened(key, new, "model", run.models[second], run.now() + run.settings.session_duration)
    now = run.now()
    _refused(run, key, first)  # a second failed switch, from the new session: it leaves that one dead
    oracle.failed_create(key, "model", first, now)
    allowed = oracle.ping_answers(key)
    answer = _ping(run, key)
    if answer not in allowed:
        raise RuleBroken("R5", f"after a failed switch a ping must answer one of {sorted(allowed)}, got {answer}")
    oracle.forget(key, "R5")
    expect(_ping(run, key) == ("no_session", None), "R5", "the dead ping must have retired the session")
    check("R2")
    check("R5")
