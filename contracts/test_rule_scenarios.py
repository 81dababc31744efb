"""One fixed scenario per session rule, beside the state machine: short, deterministic, named by rule.

They run first (contracts/plugin.py), in this file's order (R1, R2, R3, R6, R7, R4, R5), and spend few
sessions: a scenario starts from what the previous one left the keys when that one passed (R2 switches
away from R1's session and back, R3's bid replaces R2's, a second bid that one and a modelsession the
second bid, R6 lets R3's expire and opens one, R7's first key keeps that one while the second key opens
its own, R4 closes the second key's (and the first key's must live on: R7) and opens another, R5 pings
the first key's to death), and from closed sessions otherwise. Each switch back, bid after a bid, model
after a bid and create after a close must open a session the run never saw: the sequence bugs a cache or
counter makes show there. Against a faithful target seven sessions prove R1-R7 with two keys and no bid
id (R1's second create is a reuse: free, sent only below the cap). Every answer is checked against the
spec before the rule is judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from contracts.answers import AnswerError, expect, expect_answer
from contracts.api import BID_SESSION, CLOSE, MODEL_SESSION, PING, labels
from contracts.budget import Budget
from contracts.machine import REUSE_DURATIONS
from contracts.runtime import Run
from contracts.transitions import Action, State, Transition
from openapi import Operation


@dataclass
class Held:
    """What the first key holds after the last scenario that passed; `known=False`: start clean."""

    known: bool = False
    session_id: str | None = None
    on: str | None = None  # the model name or bid id of the session


class Steps:
    """One scenario's requests for one key: each answer checked, each create within the session budget.

    `now` is what the key holds (known when the previous scenario passed, or once this one closed it);
    `leave()` hands it to the next scenario through `shared`.
    """

    def __init__(self, run: Run, key: str, budget: Budget, shared: Held) -> None:
        self.run, self.key, self.budget, self.shared = run, key, budget, shared
        self.now = Held(shared.known, shared.session_id, shared.on)
        self.sent = 0

    def send(self, operation: Operation, rule: str, duration: int | None = None, **params: str) -> dict[str, Any]:
        self.sent += 1
        creates = operation in (MODEL_SESSION, BID_SESSION)
        body = {"sessionDuration": duration or self.run.settings.session_duration} if creates else None
        response = self.run.client.post(operation.path, key=self.key, params=params or None, json=body)
        answer: dict[str, Any] = expect_answer(operation, response, rule=rule)
        return answer

    def model(self, model_id: str, rule: str, duration: int | None = None) -> str:
        if not (self.now.known and self.now.session_id and self.now.on == model_id and self.run.ledger.below_cap()):
            self.budget.need(1, f"{rule}'s modelsession")  # a reuse (the key's session is on this model) is free
        body = self.send(MODEL_SESSION, rule, duration, model_id=model_id)
        if body["model"] != model_id or body["api_key_prefix"] != self.key[:9]:
            raise AnswerError(
                f"modelsession must echo the model_id sent ({model_id!r}) and the key's prefix "
                f"({self.key[:9]!r}), got {body['model']!r} and {body['api_key_prefix']!r}"
            )
        self.now = Held(True, str(body["session_id"]), model_id)
        return str(body["session_id"])

    def bid(self, bid_id: str, rule: str) -> str:
        self.budget.need(1, f"{rule}'s bidsession")
        session_id = str(self.send(BID_SESSION, rule, bid_id=bid_id)["session_id"])
        self.now = Held(True, session_id, bid_id)
        return session_id

    def state(self) -> State | None:
        """The key's session as a state of contracts/transitions.py (model A and B as the state machine names
        them: the first listed model, the first with another blockchain id); None: another model."""
        names, on = self.run.model_names, self.now.on
        if on in self.run.bids:
            return State.BID
        ids = [self.run.models[name] for name in names]
        model_b = next((name for name, id_ in zip(names, ids, strict=True) if id_ != ids[0]), None)
        return State.A if on == names[0] else State.B if on == model_b else None

    def walked(self, *steps: tuple[State | None, Action, State | None]) -> None:
        """Transitions of contracts/transitions.py this scenario just walked and judged: the summary's
        `transitions:` line counts them with the state machine's (one from or to an unknown state is not one)."""
        self.run.coverage.try_(
            Transition(source, action, target) for source, action, target in steps if source and target
        )

    def more(self) -> bool:
        """Whether the scenario's reservation (its `more=` share included) holds one more session."""
        return self.run.ledger.holds(self.budget.owner, self.budget.spent())

    def new_session(self, model_id: str, rule: str) -> str:
        """A modelsession that must open a session this run never saw (after a switch, a bid or a close)."""
        mark = self.run.ids.mark()
        session_id = self.model(model_id, rule)
        expect(
            not self.run.ids.seen_before(session_id, mark),
            rule,
            f"modelsession on {model_id} must open a new session here, but returned {session_id}, which this run "
            "has seen before",
        )
        return session_id

    def ping(self, rule: str) -> dict[str, Any]:
        return self.send(PING, rule)

    def close(self, rule: str) -> dict[str, Any]:
        self.now = Held(True)
        return self.send(CLOSE, rule)

    def ended(self) -> None:
        """The key's session ended (dead, expired): it holds none."""
        self.now = Held(True)

    def session_on(self, model_id: str, rule: str) -> str:
        """The key's session on `model_id`: the one the previous scenario left, or a new one."""
        if self.now.known and self.now.on == model_id and self.now.session_id:
            return self.now.session_id
        if not self.now.known:
            self.sent += 1
            self.run.fresh(self.key)
        return self.model(model_id, rule)

    def any_session(self, model_id: str, rule: str) -> str:
        """The session the previous scenario left (on any model or bid), or a new one on `model_id`."""
        if self.now.known and self.now.session_id:
            return self.now.session_id
        return self.session_on(model_id, rule)

    def leave(self) -> None:
        """The scenario passed: the next one may start from what the key holds now."""
        self.shared.known, self.shared.session_id, self.shared.on = True, self.now.session_id, self.now.on


@dataclass
class Keys:
    """The scenario's first key, and the second when the run has two (R7; R4 closes what R7 left it)."""

    first: Steps
    second: Steps | None


@pytest.fixture(scope="module")
def held(run: Run) -> dict[str, Held]:
    """What each key holds between scenarios (unknown at first: the first scenario starts clean)."""
    return {key: Held() for key in run.keys[:2]}


@pytest.fixture
def keys(run: Run, budget: Budget, held: dict[str, Held]) -> Iterator[Keys]:
    """The scenario's keys. A key the scenario sent a request for is unknown afterwards unless the
    scenario passed; a key it left alone stays as it was."""
    if not run.model_names:
        pytest.skip("the target lists no models")
    before = {key: Held(h.known, h.session_id, h.on) for key, h in held.items()}
    every = [Steps(run, key, budget, held[key]) for key in held]
    for shared in held.values():
        shared.known = False
    yield Keys(every[0], every[1] if len(every) > 1 else None)
    for steps in every:
        if not steps.sent and not steps.shared.known:  # untouched by this scenario: as it was
            held[steps.key] = before[steps.key]


def _models(run: Run, count: int) -> list[str]:
    if len(run.model_names) < count:
        pytest.skip(f"the target lists {len(run.model_names)} model(s): this rule needs {count}")
    return run.model_names[:count]


@pytest.mark.contract(rules=("R1",), operations=labels(MODEL_SESSION), sessions=1)
def test_r1_the_same_model_returns_the_same_session(run: Run, keys: Keys, check: Callable[[str], None]) -> None:
    """The key's session, then three reuses (free), at the run's duration and at others: each returns it
    (a same-model create reuses the session whatever its duration: observed-v1.14.0.md 1.1)."""
    (model,), steps = _models(run, 1), keys.first
    first = steps.session_on(model, "R1")
    for duration in (run.settings.session_duration, *REUSE_DURATIONS):
        again = steps.model(model, "R1", duration)
        expect(
            again == first,
            "R1",
            f"a modelsession on {model} with sessionDuration {duration} returned {again}, not the key's {first}",
        )
    check("R1")
    steps.walked((State.A, Action.MODEL_A, State.A), (State.A, Action.MODEL_A_OTHER_DURATION, State.A))
    steps.leave()


@pytest.mark.contract(rules=("R2",), operations=labels(MODEL_SESSION, PING), sessions=1, more=1)
def test_r2_another_model_replaces_the_session(run: Run, keys: Keys, check: Callable[[str], None]) -> None:
    """A to B, then back to A (with the session its `more=` gets): each switch opens a new session (the
    one it replaced is closed, never handed back)."""
    (first, second), steps = _models(run, 2), keys.first
    old = steps.session_on(first, "R2")
    new = steps.model(second, "R2")
    expect(new != old, "R2", f"modelsession on {second} kept the session of {first} ({old})")
    ping = steps.ping("R2")
    expect(ping.get("session_id") == new, "R2", f"after the switch, ping reports {ping}, not the new session {new}")
    on_b = steps.state()  # model B as the state machine names it, unless the second model is the first's alias
    steps.walked((State.A, Action.MODEL_B, on_b))
    if steps.more():
        back = steps.new_session(first, "R2")
        expect(back != new, "R2", f"switching back to {first} kept the session of {second} ({new})")
        steps.walked((on_b, Action.MODEL_A, State.A))
    check("R2")
    steps.leave()


@pytest.mark.contract(
    rules=("R3", "R2"), operations=labels(BID_SESSION, MODEL_SESSION, PING), sessions=1, more=2, needs=("bids",)
)
def test_r3_a_bid_session_replaces_the_session(run: Run, keys: Keys, check: Callable[[str], None]) -> None:
    """A bid replaces the key's session; with the sessions its `more=` gets, a bid after a bid (the same
    bid id) replaces that one, and a modelsession after a bid replaces it in turn (R2). The first bid
    session is never closed by v1.14.0 (a bid replaces without closing): one orphan of the run's shortest
    duration."""
    if not run.bids:
        pytest.skip("no bid ids: pass --bid-id to let the run open bid sessions")
    steps = keys.first
    old = steps.any_session(run.model_names[0], "R3")
    before = steps.state()
    new = steps.bid(run.bids[0], "R3")
    ping = steps.ping("R3")
    expect(new != old and ping.get("session_id") == new, "R3", f"after bidsession ({new}), ping reports {ping}")
    steps.walked((before, Action.BID, State.BID))
    if steps.more():
        again = steps.bid(run.bids[0], "R3")
        ping = steps.ping("R3")
        expect(
            again not in (old, new) and ping.get("session_id") == again,
            "R3",
            f"a second bidsession on {run.bids[0]} returned {again} (the key's bid session was {new}), "
            f"ping reports {ping}",
        )
        new = again
        steps.walked((State.BID, Action.BID, State.BID))
    check("R3")
    if steps.more():
        model = steps.new_session(run.model_names[0], "R2")
        expect(model != new, "R2", f"modelsession after a bidsession kept the bid session {new}")
        check("R2")
        steps.walked((State.BID, Action.MODEL_A, State.A))
    steps.leave()


@pytest.mark.contract(rules=("R6",), operations=labels(PING, MODEL_SESSION), sessions=1, needs=("time",))
def test_r6_an_expired_session_counts_as_none(run: Run, keys: Keys, check: Callable[[str], None]) -> None:
    if not run.controls_time:
        pytest.skip(f"R6 (expiry) needs the mock's admin clock: {run.time_note}")
    steps = keys.first
    opened = steps.any_session(run.model_names[0], "R6")
    model = steps.now.on if steps.now.on in run.models else run.model_names[0]
    run.advance_clock(run.settings.session_duration + 60)
    expired = steps.ping("R6")
    # `no_session` once the gateway's 60-second sync has retired the expired row (observed-v1.14.0.md 1.5).
    expect(
        (expired["status"], expired.get("session_id")) in {("expired", opened), ("no_session", None)},
        "R6",
        f"ping after expiry: {expired}",
    )
    steps.ended()
    fresh = steps.model(model, "R6")
    expect(fresh != opened, "R6", f"modelsession after expiry returned the expired session {opened}")
    check("R6")
    steps.leave()
    if keys.second is not None:
        keys.second.ended()  # the other key's session (if any) expired too
        keys.second.leave()


@pytest.mark.contract(
    rules=("R7",), operations=labels(MODEL_SESSION, BID_SESSION, PING), sessions=1, needs=("two keys",)
)
def test_r7_the_other_keys_actions_leave_the_session_alone(
    run: Run, keys: Keys, budget: Budget, check: Callable[[str], None]
) -> None:
    """The second key creates, switches and bids (as far as the session budget allows) and pings, while
    the first key's session must stay exactly as it was. The second key keeps its session for R4."""
    if keys.second is None:
        pytest.skip("R7 (keys are isolated) needs two API keys: pass --api-key twice (or MORPHEUS_API_KEYS='k1 k2')")
    mine, theirs, models = keys.first.any_session(run.model_names[0], "R7"), keys.second, run.model_names
    if not theirs.now.known:
        theirs.sent += 1
        run.fresh(theirs.key)
    creates: list[Callable[[], object]] = [lambda: theirs.model(models[0], "R7")]
    creates += [lambda: theirs.model(models[1], "R7")] if len(models) > 1 else []
    creates += [lambda: theirs.bid(run.bids[0], "R7")] if run.bids else []
    # The first create is the budget's (its reservation); the others only while sessions are left over
    # beyond the state machine's share.
    actions: list[Callable[[], object]] = [
        *creates[:1],
        *(_if_room(budget, create) for create in creates[1:]),
        lambda: theirs.ping("R7"),
    ]
    for number, action in enumerate(actions, start=1):
        action()
        ping = keys.first.ping("R7")
        expect(
            (ping["status"], ping.get("session_id")) == ("alive", mine),
            "R7",
            f"after the other key's step {number}, this key's ping says {ping}",
        )
    check("R7")
    keys.first.leave()
    theirs.leave()


@pytest.mark.contract(rules=("R4", "R7"), operations=labels(CLOSE, PING, MODEL_SESSION), sessions=0, more=1)
def test_r4_close_ends_the_session(run: Run, keys: Keys, check: Callable[[str], None]) -> None:
    """Closes the session the second key kept from R7 (then the first key's session must still be
    alive: R7), or the first key's, or a new one; with the session its `more=` gets, a create after the
    close opens a session never seen."""
    holding = [steps for steps in (keys.second, keys.first) if steps is not None and steps.now.session_id]
    steps = holding[0] if holding else keys.first
    opened = steps.any_session(run.model_names[0], "R4")
    before = steps.state()
    closed = steps.close("R4")
    expect(
        closed == {"success": True, "message": "Session closed successfully", "session_id": opened},
        "R4",
        f"close answered {closed}",
    )
    ping = steps.ping("R4")
    expect(ping["status"] == "no_session", "R4", f"after a successful close, ping still reports {ping}")
    again = steps.close("R4")
    expect(again["session_id"] is None, "R4", f"a second close found a session: {again}")
    steps.walked((before, Action.CLOSE, State.CLOSED), (State.CLOSED, Action.CLOSE, State.CLOSED))
    if steps.more():  # kept open: the failed switch starts from it
        reopened = steps.new_session(run.model_names[0], "R4")
        expect(reopened != opened, "R4", f"modelsession after a close handed back the closed session {opened}")
        steps.walked((State.CLOSED, Action.MODEL_A, State.A))
    check("R4")
    steps.leave()
    mine = keys.first.now.session_id
    if steps is keys.second and mine:
        ping = keys.first.ping("R7")
        expect(ping.get("session_id") == mine, "R7", f"after the other key's close, this key's ping says {ping}")
        check("R7")
        keys.first.leave()


@pytest.mark.contract(rules=("R5",), operations=labels(PING), sessions=0)
def test_r5_ping_reports_the_session_and_a_dead_one_is_closed(
    run: Run, keys: Keys, check: Callable[[str], None]
) -> None:
    steps = keys.first
    if steps.now.known and steps.now.session_id is None:
        none = steps.ping("R5")
        expect(none["status"] == "no_session", "R5", f"a key without a session must ping no_session, got {none}")
    opened = steps.any_session(run.model_names[0], "R5")
    alive = steps.ping("R5")
    expect((alive["status"], alive.get("session_id")) == ("alive", opened), "R5", f"a live session pinged {alive}")
    check("R5")
    if run.controls_faults:  # the dead path needs the mock's admin faults (a real provider cannot be made to fail)
        run.arm("ping_dead", steps.key)
        dead = steps.ping("R5")
        expect((dead["status"], dead.get("session_id")) == ("dead", opened), "R5", f"the dead ping answered {dead}")
        after = steps.ping("R5")
        expect(after["status"] == "no_session", "R5", f"a dead session must be closed, ping now says {after}")
        steps.ended()
    steps.leave()


def _if_room(budget: Budget, create: Callable[[], object]) -> Callable[[], object]:
    return lambda: None if budget.spare() == 0 else create()
