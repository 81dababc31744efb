"""The session rules R1-R7 over sequences of requests, judged by the independent oracle (contracts/oracle.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import cast

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from contracts.api import RULES, SESSION_OPERATIONS, labels
from contracts.budget import Budget
from contracts.machine import Carry, SessionRules
from contracts.runtime import Run

MACHINE_RULES = tuple(rule for rule in RULES if rule != "R8")
TWO_KEYS = "R7 (keys are isolated) needs two API keys: pass --api-key twice (or MORPHEUS_API_KEYS='k1 k2')"


def _settings(run: Run) -> settings:
    # Shrinking replays sequences, so it needs a target whose state the run controls (the mock) and a
    # machine whose creates do not depend on a session budget that shrinks as the run goes.
    shrinks = (run.settings.in_process or run.controls_faults) and run.ledger.cap is None
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrinks else [])
    return settings(
        max_examples=run.settings.stateful_runs,
        stateful_step_count=12,
        derandomize=True,
        database=None,
        deadline=None,
        phases=phases,
        print_blob=False,  # its @reproduce_failure cannot be added to an installed test: see the Replay line
        suppress_health_check=list(HealthCheck),
    )


def _run(run: Run, keys: tuple[str, ...], budget: Budget, check: Callable[[str], None]) -> None:
    budget.need(1, "the state machine's creates")
    run.client.reset_log()
    # Hypothesis builds each run's machine with this factory (typed as a class, called without arguments).
    # Under a session cap each run goes on from the sessions the last one left (no session spent getting back).
    carry = Carry() if run.ledger.cap is not None else None
    machine = cast("type[SessionRules]", functools.partial(SessionRules, run, keys, budget, check, carry))
    try:
        _run_machine(machine, run, carry)
    except AssertionError as error:
        error.add_note("The run is derandomized: the Replay command printed with this failure replays this sequence.")
        raise


def _run_machine(machine: type[SessionRules], run: Run, carry: Carry | None) -> None:
    try:
        run_state_machine_as_test(machine, settings=_settings(run))
    except Flaky as flaky:  # a replay under a cap went otherwise: the failure is the one the run met first
        if carry is None or carry.failure is None:
            raise
        raise carry.failure from flaky


# Each machine test asks for sessions of what the fixed checks and the scenarios' further opens leave (3 and 3
# at the default cap of 20 with a bid id; at the CI job's 10, 1 and 0, and what the checks before it did not
# open): across two keys, 5 reach the four transitions only two keys can try.
@pytest.mark.contract(rules=MACHINE_RULES, operations=labels(*SESSION_OPERATIONS), sessions=4, share=1)
def test_session_rules_for_one_key(run: Run, budget: Budget, check: Callable[[str], None]) -> None:
    _run(run, run.keys[:1], budget, check)


@pytest.mark.contract(
    rules=MACHINE_RULES, operations=labels(*SESSION_OPERATIONS), sessions=5, share=1, needs=("two keys",)
)
def test_session_rules_for_two_keys(run: Run, budget: Budget, check: Callable[[str], None]) -> None:
    if len(run.keys) < 2:
        pytest.skip(TWO_KEYS)
    _run(run, run.keys[:2], budget, check)
