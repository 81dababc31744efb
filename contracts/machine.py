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
from contracts.api import APPROVE, BID_SESSION, CHAT, CLOSE, EMBEDDINGS, MODEL_SESSION, PING
from contracts.chat import automation_path, chat_body, embeddings_body, expect_stream, refused_for_automation
from contracts.conftest import Budget
from contracts.oracle import EMBEDDINGS_DEFAULT, Life, Oracle
from contracts.runtime import Run
from contracts.safety import GENERATED_SHARE, MACHINE_SHARE
from openapi import Operation

T = TypeVar("T")
UNKNOWN_MODEL = "no-such-model"
CLOSE_FAILED = "Error closing session: 500: Failed to close session"
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
        self.automation_duration = AUTOMATION_DURATION
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
        if self.run.controls_faults and self.run.settings.chat_allowed:  # the mock says how long chat's sessions last
            self.automation_duration = int(self.run.client.get(automation_path(self.keys[0])).json()["duration"])
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

    def _may_chat(self) -> bool:
        return self.run.settings.chat_allowed and self.run.chats.room(1) and self._may_open()

    @precondition(lambda self: bool(self.model_ids) and self._may_chat())
    @rule(
        key=_from(lambda m: range(len(m.keys))),
        model_id=_from(lambda m: m.model_ids),
        stream=st.booleans(),
        given=st.booleans(),
    )
    def chat_completion(self, key: int, model_id: str, stream: bool, given: bool) -> None:
        """A chat (C1-C3, C5, C6): reuse, replace or open the key's session; with `given`, the key's own
        session id in the body while asking for any model (C5: nothing may change)."""
        self._chat(CHAT, self.keys[key], model_id, stream=stream, given=given)

    @precondition(lambda self: self._may_chat())
    @rule(key=_from(lambda m: range(len(m.keys))))
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
