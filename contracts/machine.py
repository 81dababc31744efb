"""The stateful contract: a Hypothesis state machine over the session operations, judged by the oracle.

Each rule sends one request and compares the answer with the oracle's prediction: the status, content
type and body against the spec (`expect_answer`), then the rule the step takes part in; a broken
prediction raises RuleBroken naming the rule (R1-R7). Each step notes its request as a curl command
(keys redacted), so a failure prints the whole (shrunk) sequence. Keys are drawn by their index in the
run's keys, so a falsifying example never shows one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests
from hypothesis import note, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from contracts.answers import AnswerError, RuleBroken, expect, expect_answer
from contracts.api import APPROVE, BID_SESSION, CLOSE, MODEL_SESSION, PING
from contracts.conftest import Budget
from contracts.oracle import Life, Oracle
from contracts.runtime import Run
from contracts.safety import GENERATED_SHARE, MACHINE_SHARE
from openapi import Operation

T = TypeVar("T")
UNKNOWN_MODEL = "no-such-model"
CLOSE_FAILED = "Error closing session: 500: Failed to close session"
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


def _from(choices: Callable[[SessionRules], Sequence[T]]) -> st.SearchStrategy[T]:
    """A value sampled from what the running machine offers (its keys, models, bids, durations)."""
    return st.runner().flatmap(lambda machine: st.sampled_from(choices(machine)))


class SessionRules(RuleBasedStateMachine):
    """The session rules over sequences of requests for one key, or two (R7).

    Build one per run with `functools.partial(SessionRules, run, keys, budget, checked)`: `budget` is the
    test's session budget, `checked(rule)` records each rule a step really exercised.
    """

    def __init__(self, run: Run, keys: tuple[str, ...], budget: Budget, checked: Callable[[str], None]) -> None:
        super().__init__()
        self.run, self.keys, self.budget, self.checked = run, keys, budget, checked
        self.oracle = Oracle(models=dict(run.models), default_model=run.default_model)
        self.model_ids = sorted(run.models) + ([UNKNOWN_MODEL] if run.default_model else [])
        self.durations = (300, 600, 3600) if run.controls_time else (run.settings.session_duration,)
        self.last_key: str | None = None
        self.last_models: dict[int, str] = {}  # key index -> the model_id of its last modelsession step
        self.controls = (["advance_clock"] if run.controls_time else []) + (
            ["ping_dead", "close_fail"] if run.controls_faults else []
        )

    @initialize()
    def start_clean(self) -> None:
        """Every key starts with no session and no armed fault."""
        for key in self.keys:
            if self.run.controls_faults:
                self.run.forget(key)
                self.run.clear_faults(key)
            else:
                expect_answer(CLOSE, self.run.client.post(CLOSE.path, key=key))
        note(f"keys: {', '.join(key[:9] + '…' for key in self.keys)}; time control: {self.run.controls_time}")

    def teardown(self) -> None:
        """Faults armed in this run and never used must not reach the next test."""
        for key in self.keys:
            self.run.clear_faults(key)

    def _send(self, operation: Operation, key: str, **kwargs: Any) -> requests.Response:
        self.run.steps += 1
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
        """Within the machine's share, while the budget has room; beyond it, leaving the generated cases theirs."""
        keep = 0 if self.budget.spent() < MACHINE_SHARE else GENERATED_SHARE
        return self.run.ledger.may_open(self.budget.owner, keep=keep)

    @precondition(lambda self: bool(self.model_ids) and self._may_open())
    @rule(
        key=_from(lambda m: range(len(m.keys))),
        model_id=_from(lambda m: m.model_ids),
        duration=_from(lambda m: m.durations),
    )
    def create_model_session(self, key: int, model_id: str, duration: int) -> None:
        self.last_models[key] = model_id
        self._create_model_session(self.keys[key], model_id, duration)

    @precondition(lambda self: bool(self.last_models) and self._may_open())
    @rule(last=_from(lambda m: sorted(m.last_models.items())), duration=_from(lambda m: m.durations))
    def create_on_the_last_model_again(self, last: tuple[int, str], duration: int) -> None:
        """A key's last model again: where reuse (R1), switching back (R2) and reopening after a close (R4)
        or an expiry (R6) go wrong. Drawn uniformly, a model is seldom the one a key used last."""
        self.create_model_session(*last, duration)

    def _create_model_session(self, key: str, model_id: str, duration: int) -> None:
        now, oracle = self.run.now(), self.oracle
        reuse, life, current = oracle.reusable(key, model_id, now), oracle.life(key, now), oracle.book(key).session
        body = self._ok(
            MODEL_SESSION, self._send(MODEL_SESSION, key, params={"model_id": model_id}, json=_body(duration))
        )
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
            session_id not in oracle.seen,
            oracle.blame(session_id, "R2"),
            f"modelsession returned {session_id}, a session that had already ended",
        )
        if current is not None:
            self.checked("R6" if life is Life.EXPIRED else "R2")
        oracle.opened(key, session_id, "model", str(oracle.resolve(model_id)), now + duration)

    @precondition(lambda self: bool(self.run.bids) and self._may_open())
    @rule(
        key=_from(lambda m: range(len(m.keys))),
        bid=_from(lambda m: m.run.bids),
        duration=_from(lambda m: m.durations),
    )
    def create_bid_session(self, key: int, bid: str, duration: int) -> None:
        now, chosen = self.run.now(), self.keys[key]
        body = self._ok(BID_SESSION, self._send(BID_SESSION, chosen, params={"bid_id": bid}, json=_body(duration)))
        session_id = body["session_id"]
        expect(
            session_id not in self.oracle.seen,
            self.oracle.blame(session_id, "R3"),
            f"bidsession must open a new session, but returned {session_id}, which this run has seen before",
        )
        self.checked("R3")
        self.oracle.opened(chosen, session_id, "bid", bid, now + duration, rule="R3")

    @rule(key=_from(lambda m: range(len(m.keys))))
    def ping_session(self, key: int) -> None:
        chosen, previous_key, now = self.keys[key], self.last_key, self.run.now()
        life, book = self.oracle.life(chosen, now), self.oracle.book(chosen)
        body = self._ok(PING, self._send(PING, chosen))
        status, known = body["status"], book.session
        self.checked("R5")
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

    @rule(key=_from(lambda m: range(len(m.keys))))
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

    @precondition(lambda self: self.run.spend_allowed)
    @rule(key=_from(lambda m: range(len(m.keys))))
    def approve_spending(self, key: int) -> None:
        self._ok(APPROVE, self._send(APPROVE, self.keys[key], params={"amount": "1"}))

    @precondition(lambda self: self.run.controls_time or self.run.controls_faults)
    @rule(
        action=_from(lambda m: m.controls),
        key=_from(lambda m: range(len(m.keys))),
        seconds=st.sampled_from([61, 299, 1000, 3700]),
    )
    def steer_the_target(self, action: str, key: int, seconds: int) -> None:
        """One admin step on the mock (one rule, so that the requests keep most of the steps): move
        the clock, or arm a dead ping or a failing close for one key, once."""
        if action == "advance_clock":
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


def _mismatch_rule(opened_by: str | None, last_key: str | None, key: str) -> str:
    """Whose rule a wrong session id breaks: another key's step (R7), else the step that set it."""
    return "R7" if last_key not in (None, key) else opened_by or "R2"


def _body(duration: int) -> dict[str, Any]:
    return {"sessionDuration": duration, "directPayment": False, "failover": False}
