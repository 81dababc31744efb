"""The session rules R1-R7 over sequences of requests, judged by the independent oracle (contracts/oracle.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from contracts import runtime
from contracts.machine import RuleBroken, build_machine, discover_models

RUN = runtime.current()
SESSION = "/api/v1/session"
SESSION_OPERATIONS = tuple(
    f"POST /api/v1/session/{name}" for name in ("modelsession", "bidsession", "pingsession", "closesession")
)
ONE_KEY_RULES = ("R1", "R2", "R3", "R4", "R5") + (("R6",) if RUN.controls_time else ())


def _settings() -> settings:
    phases = [Phase.explicit, Phase.generate] + (
        [Phase.shrink] if RUN.settings.in_process or RUN.controls_faults else []
    )
    return settings(
        max_examples=RUN.settings.stateful_runs,
        stateful_step_count=12,
        derandomize=True,
        database=None,
        deadline=None,
        phases=phases,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


def _run(keys: tuple[str, ...]) -> None:
    RUN.client.reset_log()
    try:
        run_state_machine_as_test(build_machine(RUN, keys), settings=_settings())
    except AssertionError as error:
        error.add_note(
            "Replay: the run is derandomized, so the same command replays this sequence "
            "(pytest contracts -k test_session_rules ... with the same options)."
        )
        raise


@pytest.mark.contract(rules=ONE_KEY_RULES, operations=SESSION_OPERATIONS)
def test_session_rules_for_one_key() -> None:
    _run(RUN.keys[:1])


@pytest.mark.contract(rules=(*ONE_KEY_RULES, "R7"), operations=SESSION_OPERATIONS)
def test_session_rules_for_two_keys() -> None:
    if len(RUN.keys) < 2:
        pytest.skip("R7 (keys are isolated) needs two API keys: pass --api-key twice (or MORPHEUS_API_KEYS='k1 k2')")
    _run(RUN.keys[:2])


@pytest.mark.contract(rules=("R6",), operations=SESSION_OPERATIONS)
def test_expiry_needs_time_control() -> None:
    if not RUN.controls_time:
        pytest.skip(
            "R6 (expiry) is checked only where the suite controls time (the mock's admin clock); this target has none"
        )


@pytest.mark.contract(rules=("R7",), operations=SESSION_OPERATIONS)
def test_r7_every_action_of_one_key_leaves_the_other_keys_session_alone() -> None:
    """A fixed scenario beside the state machine: key 2 creates, switches, bids, pings and closes
    while key 1's session must stay exactly as it was."""
    if len(RUN.keys) < 2:
        pytest.skip("R7 (keys are isolated) needs two API keys: pass --api-key twice (or MORPHEUS_API_KEYS='k1 k2')")
    mine, theirs = RUN.keys[:2]
    models = sorted(name for name in discover_models(RUN)[0] if not name.startswith("0x"))
    if len(models) < 2:
        pytest.skip("the target lists fewer than two models")
    for key in (mine, theirs):
        RUN.fresh(key)
    body = {"sessionDuration": RUN.settings.session_duration}
    session = RUN.client.post(f"{SESSION}/modelsession", key=mine, params={"model_id": models[0]}, json=body).json()
    actions = [
        ("modelsession", {"model_id": models[0]}),
        ("modelsession", {"model_id": models[1]}),
        *([("bidsession", {"bid_id": RUN.bids[0]})] if RUN.bids and RUN.ledger.may_open() else []),
        ("pingsession", {}),
        ("closesession", {}),
    ]
    for action, params in actions:
        RUN.client.post(f"{SESSION}/{action}", key=theirs, params=params, json=body if "session" in action else None)
        ping = RUN.client.post(f"{SESSION}/pingsession", key=mine).json()
        if (ping.get("status"), ping.get("session_id")) != ("alive", session["session_id"]):
            raise RuleBroken("R7", f"after the other key's {action}, this key's ping says {ping}")
