"""The stateful contract: a Hypothesis state machine over the session operations, judged by the oracle.

Each rule sends one request and compares the answer with the oracle's prediction: the status, content
type and body against the spec (`expect_answer`), then the rule the step takes part in; a broken
prediction raises RuleBroken naming the rule (R1-R7). Each step notes its request as a curl command
(keys redacted), so a failure prints the whole (shrunk) sequence. Keys are drawn by their index in the
run's keys, so a falsifying example never shows one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import requests
from hypothesis import note, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from contracts.answers import AnswerError, RuleBroken, expect, expect_answer
from contracts.api import APPROVE, BID_SESSION, CHAT, CLOSE, EMBEDDINGS, MODEL_SESSION, PING
from contracts.budget import Budget
from contracts.chat import automation_path, chat_body, embeddings_body, expect_stream, refused_for_automation
from contracts.oracle import EMBEDDINGS_DEFAULT, Life, Oracle
from contracts.runtime import Run
from contracts.safety import GENERATED_SHARE
from contracts.transitions import ONE_KEY, TRANSITIONS, Action, State, Transition
from openapi import Operation

T = TypeVar("T")
UNKNOWN_MODEL = "no-such-model"
CLOSE_FAILED = "Error closing session: 500: Failed to close session"
# A switch the chain refuses (under its 5-minute minimum) after the gateway closed the old session
# (observed-v1.14.0.md 1.1): it opens nothing and costs no stake.
TOO_SHORT = 299
REFUSED = "Error from proxy router: Failed to create session: "
# A create on the model of a session the chain closed under a failed switch: the gateway reuses its row,
# the verification sees it closed (observed-v1.14.0.md 1.1).
NOT_VALID = "Unexpected error: 500: Session created but not valid in proxy router"
# What a reuse asks for against a URL besides the run's own duration: a faithful gateway opens nothing for
# it (R1: any duration, same session, not extended), and neither can expire within a run's time limit.
REUSE_DURATIONS = (600, 3600)
AUTOMATION_DURATION = 3600  # how long a session chat opens lasts: the gateway's default automation setting
MESSAGES = {
    Life.ALIVE: {"Session closed successfully"},
    Life.EXPIRED: {"Expired session marked as inactive"},
    Life.EITHER: {"Session closed successfully", "Expired session marked as inactive"},
}
PING_STATUSES = {Life.ALIVE: {"alive"}, Life.EXPIRED: {"expired"}, Life.EITHER: {"alive", "expired"}}
STEP_RULES = {
    op.operation_id: rule
    for op, rule in ((MODEL_SESSION, "R1"), (BID_SESSION, "R3"), (CLOSE, "R4"), (PING, "R5"), (APPROVE, "R7"))
}


@dataclass
class Carry:
    """What one test's machine runs hand on under a session cap: the oracle (so each run goes on from the
    keys' sessions the last one left, instead of closing them and spending a session to get back) and the
    requests the test's sequence has sent so far."""

    oracle: Oracle | None = None
    sent: int = 0
    failure: AssertionError | None = None  # the first broken check (Hypothesis' replay of it may go otherwise)


F = TypeVar("F", bound=Callable[..., None])


def _remembered(step: F) -> F:
    """A step whose first broken check the carry keeps: under a cap the target's state goes on between
    runs, so Hypothesis' replay of a failing run is not the run that failed (contracts/test_session_rules.py
    reports the failure itself)."""

    @functools.wraps(step)
    def remembering(machine: SessionRules, *args: Any, **kwargs: Any) -> None:
        try:
            step(machine, *args, **kwargs)
        except AssertionError as error:
            carry = machine.carry
            if carry is not None and carry.failure is None:
                error.add_note(
                    "The requests before it (keys cut to their prefix):\n" + "\n".join(machine.run.client.log[-40:])
                )
                carry.failure = error
            raise

    return cast("F", remembering)


def _from(choices: Callable[[SessionRules], Sequence[T]]) -> st.SearchStrategy[T]:
    """A value sampled from what the running machine offers (its keys, models, bids, durations)."""
    return st.runner().flatmap(lambda machine: st.sampled_from(choices(machine)))


class SessionRules(RuleBasedStateMachine):
    """The session rules over sequences of requests for one key, or two (R7).

    Build one per run with `functools.partial(SessionRules, run, keys, budget, checked, carry)`: `budget` is
    the test's session budget, `checked(rule)` records each rule a step really exercised, `carry` (under a
    session cap) what the test's previous runs left.
    """

    def __init__(
        self,
        run: Run,
        keys: tuple[str, ...],
        budget: Budget,
        checked: Callable[[str], None],
        carry: Carry | None = None,
    ) -> None:
        super().__init__()
        self.run, self.keys, self.budget, self.checked, self.carry = run, keys, budget, checked, carry
        self.oracle = Oracle(models=dict(run.models), default_model=run.default_model)
        self.goes_on = carry is not None and carry.oracle is not None
        if carry is not None:
            carry.oracle = self.oracle = carry.oracle or self.oracle
        self.model_ids = sorted(run.models) + ([UNKNOWN_MODEL] if run.default_model else [])
        self.durations = (300, 600, 3600) if run.controls_time else (run.settings.session_duration,)
        # Opens ask for the run's duration (the least stake); reuses vary it (R1 across durations).
        self.open_duration = run.settings.session_duration
        self.reuse_durations = tuple(sorted({*self.durations, *REUSE_DURATIONS} - {self.open_duration}))
        names = run.model_names
        self.model_a = names[0] if names else None
        self.model_b = next((name for name in names if run.models[name] != run.models[names[0]]), None)
        self.table = TRANSITIONS if len(keys) > 1 else ONE_KEY
        self.sent = 0  # requests in this sequence
        self._roams: tuple[tuple[int, int], bool] = ((-1, -1), True)  # (requests, steps) when judged, roaming
        self._clock: tuple[tuple[int, int], float] = ((-1, -1), 0.0)  # (requests, clock moves) when read, time
        self.moved = 0  # times this run moved the target's clock
        self.last_key: str | None = None
        self.last_models: dict[int, str] = {}  # key index -> the model_id of its last modelsession step
        self.automation_duration = AUTOMATION_DURATION
        self.controls = (["advance_clock"] if run.controls_time else []) + (
            ["ping_dead", "close_fail"] if run.controls_faults else []
        )

    @initialize()
    def start_clean(self) -> None:
        """Every key starts with no session and no armed fault (under a cap, only the test's first run)."""
        if self.goes_on:
            return
        for key in self.keys:
            if self.run.controls_faults:
                self.run.forget(key)
                self.run.clear_faults(key)
            else:
                expect_answer(CLOSE, self.run.client.post(CLOSE.path, key=key))
        if self.run.controls_faults and self.run.settings.chat_allowed:  # the mock says how long chat's sessions last
            self.automation_duration = int(self.run.client.get(automation_path(self.keys[0])).json()["duration"])
        note(f"keys: {', '.join(key[:9] + '…' for key in self.keys)}; time control: {self.run.controls_time}")

    def teardown(self) -> None:
        """Faults armed in this run and never used must not reach the next test, nor (under a cap) the next
        run's oracle: it is handed on, so it forgets them too."""
        for key in self.keys:
            self.run.clear_faults(key)
            book = self.oracle.book(key)
            book.pending_dead = book.pending_close_fail = 0
        sequence = self.sent + (self.carry.sent if self.carry is not None else 0)
        if self.carry is not None:
            self.carry.sent = sequence
        self.run.coverage.longest = max(self.run.coverage.longest, sequence)

    def _send(self, operation: Operation, key: str, **kwargs: Any) -> requests.Response:
        self.run.steps += 1
        self.sent += 1
        response = self.run.client.post(operation.path, key=key, **kwargs)
        log = self.run.client.log
        note(f"{log[-1] if log else operation.path}\n    -> {response.status_code} {response.text[:300]}")
        if len(self.keys) > 1 and self.last_key not in (None, key):
            self.checked("R7")  # the other key acted last: this answer is judged against the other's history
        self.last_key = key
        return response

    def _ok(self, operation: Operation, response: requests.Response) -> dict[str, Any]:
        body: dict[str, Any] = expect_answer(operation, response, rule=STEP_RULES[operation.operation_id])
        return body

    def _may_open(self) -> bool:
        """Within the test's reservation, while the budget has room; beyond it, leaving the generated cases theirs."""
        keep = 0 if self.budget.spent() < self.run.ledger.reserved.get(self.budget.owner, 0) else GENERATED_SHARE
        return self.run.ledger.may_open(self.budget.owner, keep=keep)

    def _free(self, key: int, model_id: str) -> bool:
        """A modelsession that opens nothing: the key's live session is on this model (R1)."""
        chosen = self.keys[key]
        reusable = self.oracle.reusable(chosen, model_id, self._now()) is not None
        return reusable and not self.oracle.book(chosen).closed_on_chain and self.run.ledger.below_cap()

    def _roaming(self) -> bool:
        """The other rules draw freely once no untried transition is within reach (every one the target
        offers was tried, or none can be reached with the budget left); until then `explore` takes every step."""
        if self.model_a is None or self.carry is None:
            return True  # no cap: runs are shrunk, so no step may depend on what earlier runs tried
        mark = (self.sent, self.moved)
        if self._roams[0] != mark:
            candidates = self._candidates()
            self._roams = (mark, not candidates or self._pool(candidates) is candidates)
        return self._roams[1]

    def _now(self) -> float:
        """The target's clock for choosing a step, read once between requests (on the mock each read is a
        request, and preconditions ask often); judging a step reads it afresh."""
        mark = (self.sent, self.moved)
        if self._clock[0] != mark:
            self._clock = (mark, self.run.now())
        return self._clock[1]

    def _state(self, key: str, now: float) -> State | None:
        """The key's state in contracts/transitions.py (None: one the table leaves out, e.g. expired)."""
        book, life = self.oracle.book(key), self.oracle.life(key, now)
        known = book.session
        if known is None:
            return State.NONE if book.ended_by is None else State.CLOSED
        if life is not Life.ALIVE:
            return None
        on_a = known.kind == "model" and self.model_a is not None and known.on == self.run.models[self.model_a]
        if book.closed_on_chain:
            return State.FAILED if on_a else None
        if known.kind == "bid":
            return State.BID
        on_b = known.kind == "model" and self.model_b is not None and known.on == self.run.models[self.model_b]
        return State.A if on_a else State.B if on_b else None

    def _candidates(self, states: list[State | None] | None = None) -> list[tuple[int, Transition]]:
        """(key index, transition) pairs the keys' states (now, or as given), the target and the budget allow."""
        if states is None:
            now = self._now()
            states = [self._state(key, now) for key in self.keys]
        may_open, offers, found = self._may_open(), self.run.offers, []
        for index, state in enumerate(states):
            other = states[1 - index] if len(states) > 1 else None
            for transition in self.table:
                if transition.source is not state or transition.other not in (None, other):
                    continue
                if transition.needs - offers:
                    continue
                if transition.opens and not may_open:
                    self.run.coverage.starved.add(transition.name)
                    continue
                found.append((index, transition))
        return found

    def _pool(self, candidates: list[tuple[int, Transition]]) -> list[tuple[int, Transition]]:
        """The untried candidates; else those after which an untried one is allowed (for either key); else
        all of them (the same list: nothing untried is within one step)."""
        tried = self.run.coverage.tried
        untried = [pick for pick in candidates if pick[1].name not in tried]
        if self.carry is None:  # no cap: runs are shrunk and replayed, so the draw ignores earlier runs
            return candidates
        # Across two keys the transitions only two keys can try come first (the one-key test tries the rest).
        across = any(transition.other for transition in self.run.coverage.untried(self.table))
        first = [pick for pick in untried if pick[1].other] if across else untried
        # Steps that keep the key where it is and open nothing first, then the failed switch (free, and the
        # switch out of it opens the session a switch would), then opens (each reaches a state with more to
        # try), then the free steps that end a session (getting back costs an open).
        staying = [pick for pick in first if pick[1].source is pick[1].target and not pick[1].opens]
        failing = [pick for pick in first if pick[1].action is Action.FAIL_SWITCH]
        opening = self._most_ahead([pick for pick in first if pick[1].opens])
        if first:
            return staying or failing or opening or first
        now = self._now()
        states = [self._state(key, now) for key in self.keys]
        ahead = [pick for pick in candidates if self._opens_the_way(states, *pick, across=across)]
        return ahead or untried or candidates

    def _most_ahead(self, picks: list[tuple[int, Transition]]) -> list[tuple[int, Transition]]:
        """The opens whose target state has the most untried transitions (the budget buys the most there)."""
        left = self.run.coverage.untried(self.table)
        ahead = [sum(transition.source is pick[1].target for transition in left) for pick in picks]
        return [pick for pick, count in zip(picks, ahead, strict=True) if count == max(ahead)]

    def _opens_the_way(self, states: list[State | None], index: int, transition: Transition, *, across: bool) -> bool:
        """Whether an untried transition (one across two keys, while any is left) is allowed after `transition`."""
        after = [transition.target if number == index else state for number, state in enumerate(states)]
        starved = set(self.run.coverage.starved)
        allowed = self._candidates(after)
        self.run.coverage.starved = starved  # a look ahead is no evidence of the budget
        return any(pick[1].name not in self.run.coverage.tried and (pick[1].other or not across) for pick in allowed)

    @precondition(lambda self: self.model_a is not None)
    @rule(data=st.data())
    @_remembered
    def explore(self, data: st.DataObject) -> None:
        """One transition of a key's session (contracts/transitions.py), drawn uniformly from the ones not
        tried yet that the states and the budget allow, then at random."""
        candidates = self._candidates()
        if not candidates:
            return
        index, transition = data.draw(st.sampled_from(self._pool(candidates)), label="transition")
        key, now = self.keys[index], self._now()
        before = [self._state(chosen, now) for chosen in self.keys]
        note(f"transition for key {index}: {transition.name}")
        try:
            self._act(index, transition.action, data)
        except AssertionError:  # it was tried, and broke a check
            self.run.coverage.tried.add(transition.name)
            raise
        after = self._state(key, self._now())
        other = before[1 - index] if len(before) > 1 else None
        self.run.coverage.try_(
            candidate
            for candidate in self.table
            if (candidate.source, candidate.action, candidate.target) == (before[index], transition.action, after)
            and candidate.other in (None, other)
        )

    def _act(self, index: int, action: Action, data: st.DataObject) -> None:
        key, a, b = self.keys[index], str(self.model_a), str(self.model_b)
        if action in (Action.MODEL_A, Action.MODEL_A_OTHER_DURATION, Action.MODEL_B):
            self.last_models[index] = b if action is Action.MODEL_B else a
            reusing = self._free(index, self.last_models[index])
            durations: tuple[int, ...] = (self.open_duration,)
            if reusing:  # reuses come in twos (a counter that goes wrong late shows), each duration once
                durations = self.reuse_durations if action is Action.MODEL_A_OTHER_DURATION else durations * 2
            for duration in durations:
                self._create_model_session(key, self.last_models[index], duration)
        elif action is Action.BID:
            self.create_bid_session(index, data.draw(st.sampled_from(self.run.bids), label="bid"), self.open_duration)
        elif action is Action.CLOSE:
            self.close_session(index)
        elif action is Action.PING:
            self.ping_session(index)
        else:
            self._fail_switch(key, b)

    def _fail_switch(self, key: str, model_id: str) -> None:
        """A switch the chain refuses: a 500, and the gateway still holds the old session, closed on chain
        (observed-v1.14.0.md 1.1)."""
        now = self.run.now()
        response = self._send(MODEL_SESSION, key, params={"model_id": model_id}, json=_body(TOO_SHORT))
        detail = expect_answer(MODEL_SESSION, response, status=500, rule="R2")["detail"]
        expect(
            isinstance(detail, str) and detail.startswith(REFUSED),
            "R2",
            f"a {TOO_SHORT} s modelsession on another model must be refused upstream ({REFUSED}...), got {detail!r}",
        )
        self.oracle.failed_create(key, "model", model_id, now)
        self.checked("R2")

    @precondition(lambda self: bool(self.model_ids) and self._roaming() and (self._may_open() or self._holds_model()))
    @rule(
        key=_from(lambda m: range(len(m.keys))),
        model_id=_from(lambda m: m.model_ids),
        duration=_from(lambda m: m.durations),
    )
    @_remembered
    def create_model_session(self, key: int, model_id: str, duration: int) -> None:
        book = self.oracle.book(self.keys[key])
        if book.closed_on_chain and self.oracle.reusable(self.keys[key], model_id, self._now()) is None:
            return  # another model after a failed switch: `explore` tries it (failed -> model B)
        if not self._free(key, model_id) and not self._may_open():
            return  # it would open a session the budget has no room for
        self.last_models[key] = model_id
        self._create_model_session(self.keys[key], model_id, duration)

    def _holds_model(self) -> bool:
        return any(self._free(key, model) for key, model in self.last_models.items())

    @precondition(lambda self: bool(self.last_models) and self._roaming() and (self._may_open() or self._holds_model()))
    @rule(last=_from(lambda m: sorted(m.last_models.items())), duration=_from(lambda m: m.durations))
    @_remembered
    def create_on_the_last_model_again(self, last: tuple[int, str], duration: int) -> None:
        """A key's last model again: where reuse (R1), switching back (R2) and reopening after a close (R4)
        or an expiry (R6) go wrong. Drawn uniformly, a model is seldom the one a key used last."""
        self.create_model_session(*last, duration)

    def _create_model_session(self, key: str, model_id: str, duration: int) -> None:
        now, oracle, mark = self.run.now(), self.oracle, self.run.ids.mark()
        reuse, life, current = oracle.reusable(key, model_id, now), oracle.life(key, now), oracle.book(key).session
        response = self._send(MODEL_SESSION, key, params={"model_id": model_id}, json=_body(duration))
        if oracle.book(key).closed_on_chain and life is Life.ALIVE:
            if reuse is not None and response.status_code == 500:  # its row is reused, the chain says closed
                detail = expect_answer(MODEL_SESSION, response, status=500, rule="R1")["detail"]
                expect(detail == NOT_VALID, "R1", f"a create on a session closed on chain must fail {NOT_VALID!r}")
                self.checked("R1")
                return
            reuse = None  # the background sync retired the row, or another model: a new session
        # The rule a wrong answer breaks: reuse (R1), a switch from a live session (R2), a create after a close (R4).
        rule_id = (
            "R1" if reuse else "R2" if current is not None else "R4" if oracle.book(key).ended_by == "R4" else "R1"
        )
        body: dict[str, Any] = expect_answer(MODEL_SESSION, response, rule=rule_id)
        session_id = body["session_id"]
        if body["model"] != model_id:
            raise AnswerError(f"`model` must echo the model_id sent ({model_id!r}), got {body['model']!r}")
        if body["api_key_prefix"] != key[:9]:
            raise AnswerError(f"api_key_prefix {body['api_key_prefix']!r} is not the key's")
        if reuse is not None and session_id == reuse:
            self.checked("R1")
            return  # R1: the same session, unchanged
        expect(
            reuse is None or life is Life.EITHER,
            "R1",
            f"modelsession on the same model must return the key's session {reuse} unchanged, "
            f"got a new one {session_id}",
        )
        if current is not None and session_id == current.session_id:
            rule_id = "R6" if life is not Life.ALIVE else "R2"
            raise RuleBroken(
                rule_id,
                f"modelsession must open a new session here (the key's session {current.session_id} is "
                f"{'expired' if rule_id == 'R6' else 'on another model or a bid'}), but it returned the old one",
            )
        expect(
            session_id not in oracle.seen and not self.run.ids.seen_before(session_id, mark),
            oracle.blame(session_id, "R2"),
            f"modelsession returned {session_id} as a new session, but this run has seen it before",
        )
        if current is not None:
            self.checked("R6" if life is Life.EXPIRED else "R2")
        oracle.opened(key, session_id, "model", str(oracle.resolve(model_id)), now + duration)

    @precondition(lambda self: bool(self.run.bids) and self._roaming() and self._may_open())
    @rule(
        key=_from(lambda m: range(len(m.keys))),
        bid=_from(lambda m: m.run.bids),
        duration=_from(lambda m: m.durations),
    )
    @_remembered
    def create_bid_session(self, key: int, bid: str, duration: int) -> None:
        now, chosen, mark = self.run.now(), self.keys[key], self.run.ids.mark()
        if self.oracle.book(chosen).closed_on_chain:
            return  # a bid after a failed switch: v1.14.0's answer was never observed
        body = self._ok(BID_SESSION, self._send(BID_SESSION, chosen, params={"bid_id": bid}, json=_body(duration)))
        session_id = body["session_id"]
        expect(
            session_id not in self.oracle.seen and not self.run.ids.seen_before(session_id, mark),
            self.oracle.blame(session_id, "R3"),
            f"bidsession must open a new session, but returned {session_id}, which this run has seen before",
        )
        self.checked("R3")
        self.oracle.opened(chosen, session_id, "bid", bid, now + duration, rule="R3")

    @precondition(lambda self: self._roaming())
    @rule(key=_from(lambda m: range(len(m.keys))))
    @_remembered
    def ping_session(self, key: int) -> None:
        chosen, previous_key, now = self.keys[key], self.last_key, self.run.now()
        life, book = self.oracle.life(chosen, now), self.oracle.book(chosen)
        body = self._ok(PING, self._send(PING, chosen))
        status, known = body["status"], book.session
        self.checked("R5")
        if known is not None and book.closed_on_chain:
            answer = (status, body.get("session_id"))
            held = self.oracle.ping_answers(chosen) | (
                {("expired", known.session_id)} if life is not Life.ALIVE else set()
            )
            expect(
                answer in held,
                "R5",
                f"after a failed switch a ping must answer one of {sorted(held, key=str)} "
                f"(the session the gateway still holds is closed on chain), got {answer}",
            )
            self.oracle.forget(chosen, "R5")
            return
        if known is None:
            rule_id = self.oracle.blame(body.get("session_id"), book.ended_by or "R5")
            expect(
                status == "no_session",
                rule_id,
                f"ping must report no_session (the key's last session ended by {rule_id}), "
                f"got {status} {body.get('session_id')}",
            )
            return
        expect(
            body.get("session_id") == known.session_id,
            self.oracle.blame(body.get("session_id"), _mismatch_rule(book.opened_by, previous_key, chosen)),
            f"ping reported session {body.get('session_id')}, but the key's session is {known.session_id} "
            f"(given by its last {book.opened_by or 'create'} step)",
        )
        allowed = PING_STATUSES[life]
        if book.pending_dead and life is not Life.EXPIRED:
            allowed = allowed - {"alive"} | {"dead"}
        expect(
            status in allowed,
            "R6" if "expired" in allowed else "R5",
            f"ping must report {' or '.join(sorted(allowed))} for {known.session_id}, got {status}",
        )
        if status == "dead":
            book.pending_dead -= 1
            self.oracle.forget(chosen, "R5")
        elif status == "expired":
            self.checked("R6")
            self.oracle.forget(chosen, "R6")

    @precondition(lambda self: self._roaming())
    @rule(key=_from(lambda m: range(len(m.keys))))
    @_remembered
    def close_session(self, key: int) -> None:
        chosen, previous_key, now = self.keys[key], self.last_key, self.run.now()
        life, book = self.oracle.life(chosen, now), self.oracle.book(chosen)
        response = self._send(CLOSE, chosen)
        known = book.session
        armed = known is not None and book.pending_close_fail > 0 and life is not Life.EXPIRED
        if armed and (life is Life.ALIVE or response.status_code == 500):
            failed = expect_answer(CLOSE, response, status=500, rule="R4")
            expect(failed == {"detail": CLOSE_FAILED}, "R4", f"an armed close failure must answer {CLOSE_FAILED!r}")
            book.pending_close_fail -= 1
            self.checked("R4")
            return  # R4: the session stays active
        body = self._ok(CLOSE, response)
        self.checked("R4")
        if known is not None and book.closed_on_chain:
            answer = (body["message"], body["session_id"])
            allowed = {(message, known.session_id) for message in MESSAGES[Life.EITHER]}
            expect(
                answer in allowed | {("No active session found to close", None)},
                "R4",
                f"close after a failed switch must end the session the gateway still holds ({known.session_id}) "
                f"or find none (the sync retired it), got {body}",
            )
            self.oracle.forget(chosen, "R4")
            return
        if known is None:
            expect(
                (body["message"], body["session_id"]) == ("No active session found to close", None),
                self.oracle.blame(body["session_id"], book.ended_by or "R4"),
                f"close must report no session (the key's last session ended by "
                f"{book.ended_by or 'nothing'}), got {body}",
            )
            return
        messages = MESSAGES[life]
        same = body["session_id"] == known.session_id
        wrong_session = self.oracle.blame(body["session_id"], _mismatch_rule(book.opened_by, previous_key, chosen))
        expect(
            body["message"] in messages and same,
            "R4" if same else wrong_session,
            f"close of {known.session_id} must report {' or '.join(sorted(messages))} with its id, got {body}",
        )
        self.oracle.forget(chosen, "R4")

    @precondition(lambda self: self.run.spend_allowed and self._roaming())
    @rule(key=_from(lambda m: range(len(m.keys))))
    @_remembered
    def approve_spending(self, key: int) -> None:
        self._ok(APPROVE, self._send(APPROVE, self.keys[key], params={"amount": "1"}))

    @precondition(lambda self: (self.run.controls_time or self.run.controls_faults) and self._roaming())
    @rule(
        action=_from(lambda m: m.controls),
        key=_from(lambda m: range(len(m.keys))),
        seconds=st.sampled_from([61, 299, 1000, 3700]),
    )
    @_remembered
    def steer_the_target(self, action: str, key: int, seconds: int) -> None:
        """One admin step on the mock (one rule, so that the requests keep most of the steps): move
        the clock, or arm a dead ping or a failing close for one key, once."""
        if action == "advance_clock":
            self.moved += 1
            self.run.advance_clock(seconds)
            note(f"(admin) advance the clock {seconds} s")
            return
        chosen = self.keys[key]
        self.run.arm(action, chosen)
        note(f"(admin) arm {action} once for {chosen[:9]}…")
        book = self.oracle.book(chosen)
        if action == "ping_dead":
            book.pending_dead += 1
        else:
            book.pending_close_fail += 1

    def _may_chat(self) -> bool:
        return self.run.settings.chat_allowed and self.run.chats.room(1) and self._may_open() and self._roaming()

    @precondition(lambda self: bool(self.model_ids) and self._may_chat())
    @rule(
        key=_from(lambda m: range(len(m.keys))),
        model_id=_from(lambda m: m.model_ids),
        stream=st.booleans(),
        given=st.booleans(),
    )
    @_remembered
    def chat_completion(self, key: int, model_id: str, stream: bool, given: bool) -> None:
        """A chat (C1-C3, C5, C6): reuse, replace or open the key's session; with `given`, the key's own
        session id in the body while asking for any model (C5: nothing may change)."""
        self._chat(CHAT, self.keys[key], model_id, stream=stream, given=given)

    @precondition(lambda self: self._may_chat())
    @rule(key=_from(lambda m: range(len(m.keys))))
    @_remembered
    def create_embeddings(self, key: int) -> None:
        """Embeddings on the default embeddings model: the key's one session moves to it (C4)."""
        self._chat(EMBEDDINGS, self.keys[key], None)

    def _chat(
        self, operation: Operation, key: str, model_id: str | None, *, stream: bool = False, given: bool = False
    ) -> None:
        now, book = self.run.now(), self.oracle.book(key)
        life = self.oracle.life(key, now)
        if life is Life.EITHER or book.closed_on_chain or book.pending_dead:
            return  # an answer the oracle cannot predict (about to expire, closed on chain, a dead ping armed)
        known = book.session if life is Life.ALIVE else None
        session_id = known.session_id if given and known is not None else None
        on = EMBEDDINGS_DEFAULT if model_id is None else str(self.oracle.resolve(model_id))
        body = embeddings_body(None) if model_id is None else chat_body(model_id, stream=stream, session_id=session_id)
        response = self._send(operation, key, json=body)
        reuse = session_id or self.oracle.reusable_on(key, on, now)
        if reuse is None and refused_for_automation(operation, response):
            self._refused(key, life)
            return
        rule_id = "C5" if session_id else "C1" if reuse else "C3" if known is None else "C2"
        if stream:
            expect_stream(response, rule=rule_id)
        else:
            expect_answer(operation, response, rule=rule_id)
        status, seen = self._held(key)
        if reuse is not None:
            broken = "C6" if status != "alive" else rule_id
            message = f"after {operation.label} on the key's session {reuse}, ping says {status} {seen}"
            expect((status, seen) == ("alive", reuse), broken, message)
            self.checked(rule_id)
            self.checked("C6")
            return
        rule_id = "C4" if model_id is None and known is not None else rule_id
        fresh = status == "alive" and isinstance(seen, str) and seen not in self.oracle.seen
        expect(fresh, rule_id, f"{operation.label} must open a new session here, ping says {status} {seen}")
        self.run.ledger.count(str(seen))
        self.checked(rule_id)
        self.oracle.opened(key, str(seen), "model", on, now + self.automation_duration)

    def _held(self, key: str) -> tuple[str, str | None]:
        """The key's session as ping reports it (status, session id)."""
        held = self._ok(PING, self._send(PING, key))
        return str(held["status"]), held.get("session_id")

    def _refused(self, key: str, life: Life) -> None:
        """Automation is off (C3): nothing opened; a live session on another model was closed on chain
        first (observed-v1.14.0.md 7.A.1), so ping says it is dead (or, after a sync pass, none)."""
        status, _ = self._held(key)
        allowed = {Life.ALIVE: {"dead", "no_session"}, Life.EXPIRED: {"expired", "no_session"}}
        expect(
            status in allowed.get(life, {"no_session"}),
            "C3",
            f"after a chat refused for automation, ping says {status}",
        )
        self.oracle.forget(key, "C3")
        self.checked("C3")


def _mismatch_rule(opened_by: str | None, last_key: str | None, key: str) -> str:
    """Whose rule a wrong session id breaks: another key's step (R7), else the step that set it."""
    return "R7" if last_key not in (None, key) else opened_by or "R2"


def _body(duration: int) -> dict[str, Any]:
    return {"sessionDuration": duration, "directPayment": False, "failover": False}
