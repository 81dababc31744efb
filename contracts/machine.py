"""The stateful contract: a Hypothesis state machine over the session operations, judged by the oracle.

Every step checks the status, the body against the spec, and the oracle's prediction; a broken
prediction raises RuleBroken naming the rule (R1-R7). Each step notes its request as a curl command
(keys redacted), so a failure prints the whole (shrunk) sequence.
"""

from __future__ import annotations

from typing import Any

import requests
from hypothesis import note, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from contracts.checks import assert_body_conforms
from contracts.oracle import Life, Oracle
from contracts.runtime import Run

SESSION = "/api/v1/session"
MODEL_SESSION = "create_model_session_api_v1_session_modelsession_post"
BID_SESSION = "create_bid_session_api_v1_session_bidsession_post"
CLOSE = "close_session_api_v1_session_closesession_post"
PING = "ping_session_api_v1_session_pingsession_post"
APPROVE = "approve_spending_api_v1_session_approve_post"
DEFAULT_MODEL_NAME = "mistral-31-24b"  # the gateway's DEFAULT_FALLBACK_MODEL
UNKNOWN_MODEL = "no-such-model"
CLOSE_FAILED = "Error closing session: 500: Failed to close session"


class RuleBroken(AssertionError):
    """The target's answer breaks a session rule; the message starts with the rule id."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule} broken: {message}")
        self.rule = rule


def expect(condition: bool, rule: str, message: str) -> None:
    if not condition:
        raise RuleBroken(rule, message)


def discover_models(run: Run) -> tuple[dict[str, str], str | None]:
    """name/blockchain id -> blockchain id for up to three listed models, and the default model's id."""
    listed = run.client.get("/api/v1/models").json().get("data", [])[:3]
    models = {}
    for model in listed:
        models[model["id"]] = models[model["blockchainID"]] = model["blockchainID"]
    return models, models.get(DEFAULT_MODEL_NAME)


def build_machine(run: Run, keys: tuple[str, ...]) -> type[RuleBasedStateMachine]:
    """A state machine class bound to one run and its keys (one key, or two for R7)."""
    models, default = discover_models(run)
    model_ids = sorted(models) + ([UNKNOWN_MODEL] if default else [])
    durations = (300, 600, 3600) if run.controls_time else (run.settings.session_duration,)
    key_choice = st.sampled_from(keys)

    class SessionRules(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.oracle = Oracle(models=dict(models), default_model=default)
            self.last_key: str | None = None

        @initialize()
        def start_clean(self) -> None:
            """Every key starts with no session and no armed fault."""
            for key in keys:
                if run.controls_faults:
                    run.client.delete(f"/__admin/state/{key[:9]}")
                    run.client.delete("/__admin/faults", params={"key": key[:9]})
                else:
                    run.client.post(f"{SESSION}/closesession", key=key)
            note(f"keys: {', '.join(key[:9] + '…' for key in keys)}; time control: {run.controls_time}")

        def teardown(self) -> None:
            """Faults armed in this run and never used must not reach the next test."""
            if run.controls_faults:
                for key in keys:
                    run.client.delete("/__admin/faults", params={"key": key[:9]})

        def _send(self, operation_id: str, key: str, path: str, **kwargs: Any) -> Any:
            run.steps += 1
            response = run.client.post(path, key=key, **kwargs)
            note(
                f"{run.client.log[-1] if run.client.log else path}\n    -> {response.status_code} {response.text[:300]}"
            )
            self.last_key = key
            return response

        def _ok(self, operation_id: str, response: requests.Response) -> dict[str, Any]:
            expect(
                response.status_code == 200,
                _rule_of(operation_id),
                f"{operation_id} answered {response.status_code}: {response.text[:300]}",
            )
            body: dict[str, Any] = response.json()
            assert_body_conforms(operation_id, 200, body)
            return body

        @precondition(lambda self: bool(model_ids) and run.ledger.may_open())
        @rule(key=key_choice, model_id=st.sampled_from(model_ids or ["-"]), duration=st.sampled_from(durations))
        def create_model_session(self, key: str, model_id: str, duration: int) -> None:
            now = run.now()
            reuse, life = self.oracle.reusable(key, model_id, now), self.oracle.life(key, now)
            current = self.oracle.book(key).session
            body = self._ok(
                MODEL_SESSION,
                self._send(
                    MODEL_SESSION, key, f"{SESSION}/modelsession", params={"model_id": model_id}, json=_body(duration)
                ),
            )
            session_id = body["session_id"]
            expect(
                body["model"] == model_id,
                "R1",
                f"`model` must echo the model_id sent ({model_id!r}), got {body['model']!r}",
            )
            expect(
                body["api_key_prefix"] == key[:9], "R7", f"api_key_prefix {body['api_key_prefix']!r} is not the key's"
            )
            if reuse is not None and session_id == reuse:
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
                session_id not in self.oracle.seen,
                self.oracle.blame(session_id, "R2"),
                f"modelsession returned {session_id}, a session that had already ended",
            )
            self.oracle.opened(key, session_id, "model", str(self.oracle.resolve(model_id)), now + duration)

        @precondition(lambda self: bool(run.bids) and run.ledger.may_open())
        @rule(key=key_choice, bid=st.sampled_from(run.bids or ("-",)), duration=st.sampled_from(durations))
        def create_bid_session(self, key: str, bid: str, duration: int) -> None:
            now = run.now()
            body = self._ok(
                BID_SESSION,
                self._send(BID_SESSION, key, f"{SESSION}/bidsession", params={"bid_id": bid}, json=_body(duration)),
            )
            session_id = body["session_id"]
            expect(
                session_id not in self.oracle.seen,
                self.oracle.blame(session_id, "R3"),
                f"bidsession must open a new session, but returned {session_id}, which this run has seen before",
            )
            self.oracle.opened(key, session_id, "bid", bid, now + duration, rule="R3")

        @rule(key=key_choice)
        def ping_session(self, key: str) -> None:
            previous_key, now = self.last_key, run.now()
            life, book = self.oracle.life(key, now), self.oracle.book(key)
            body = self._ok(PING, self._send(PING, key, f"{SESSION}/pingsession"))
            status, known = body["status"], book.session
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
                self.oracle.blame(body.get("session_id"), _mismatch_rule(book.opened_by, previous_key, key)),
                f"ping reported session {body.get('session_id')}, but the key's session is {known.session_id} "
                f"(given by its last {book.opened_by or 'create'} step)",
            )
            allowed = {Life.ALIVE: {"alive"}, Life.EXPIRED: {"expired"}, Life.EITHER: {"alive", "expired"}}[life]
            if book.pending_dead and life is not Life.EXPIRED:
                allowed = allowed - {"alive"} | {"dead"}
            expect(
                status in allowed,
                "R6" if "expired" in allowed else "R5",
                f"ping must report {' or '.join(sorted(allowed))} for {known.session_id}, got {status}",
            )
            if status == "dead":
                book.pending_dead -= 1
                self.oracle.forget(key, "R5")
            elif status == "expired":
                self.oracle.forget(key, "R6")

        @rule(key=key_choice)
        def close_session(self, key: str) -> None:
            previous_key, now = self.last_key, run.now()
            life, book = self.oracle.life(key, now), self.oracle.book(key)
            response = self._send(CLOSE, key, f"{SESSION}/closesession")
            known = book.session
            armed = known is not None and book.pending_close_fail > 0 and life is not Life.EXPIRED
            if armed and (life is Life.ALIVE or response.status_code == 500):
                failed = response.status_code == 500 and response.json() == {"detail": CLOSE_FAILED}
                expect(
                    failed,
                    "R4",
                    f"an armed close failure must answer 500 {CLOSE_FAILED!r}, "
                    f"got {response.status_code} {response.text[:200]}",
                )
                book.pending_close_fail -= 1
                return  # R4: the session stays active
            body = self._ok(CLOSE, response)
            if known is None:
                expect(
                    (body["message"], body["session_id"]) == ("No active session found to close", None),
                    self.oracle.blame(body["session_id"], book.ended_by or "R4"),
                    f"close must report no session (the key's last session ended by "
                    f"{book.ended_by or 'nothing'}), got {body}",
                )
                return
            messages = {
                Life.ALIVE: {"Session closed successfully"},
                Life.EXPIRED: {"Expired session marked as inactive"},
                Life.EITHER: {"Session closed successfully", "Expired session marked as inactive"},
            }[life]
            same = body["session_id"] == known.session_id
            wrong_session = self.oracle.blame(body["session_id"], _mismatch_rule(book.opened_by, previous_key, key))
            expect(
                body["message"] in messages and same,
                "R4" if same else wrong_session,
                f"close of {known.session_id} must report {' or '.join(sorted(messages))} with its id, got {body}",
            )
            self.oracle.forget(key, "R4")

        @precondition(lambda self: run.spend_allowed)
        @rule(key=key_choice)
        def approve_spending(self, key: str) -> None:
            self._ok(APPROVE, self._send(APPROVE, key, f"{SESSION}/approve", params={"amount": "1"}))

        @precondition(lambda self: run.controls_time)
        @rule(seconds=st.sampled_from([61, 299, 1000, 3700]))
        def advance_clock(self, seconds: int) -> None:
            run.client.post("/__admin/clock/advance", json={"seconds": seconds})
            note(f"(admin) advance the clock {seconds} s")

        @precondition(lambda self: run.controls_faults)
        @rule(key=key_choice)
        def arm_dead_ping(self, key: str) -> None:
            run.client.post("/__admin/faults", json={"kind": "ping_dead", "key": key[:9], "count": 1})
            self.oracle.book(key).pending_dead += 1
            note(f"(admin) arm ping_dead once for {key[:9]}…")

        @precondition(lambda self: run.controls_faults)
        @rule(key=key_choice)
        def arm_failing_close(self, key: str) -> None:
            run.client.post("/__admin/faults", json={"kind": "close_fail", "key": key[:9], "count": 1})
            self.oracle.book(key).pending_close_fail += 1
            note(f"(admin) arm close_fail once for {key[:9]}…")

    return SessionRules


def _mismatch_rule(opened_by: str | None, last_key: str | None, key: str) -> str:
    """Whose rule a wrong session id breaks: another key's step (R7), else the step that set it."""
    return "R7" if last_key not in (None, key) else opened_by or "R2"


def _body(duration: int) -> dict[str, Any]:
    return {"sessionDuration": duration, "directPayment": False, "failover": False}


def _rule_of(operation_id: str) -> str:
    return {MODEL_SESSION: "R1", BID_SESSION: "R3", CLOSE: "R4", PING: "R5", APPROVE: "R7"}[operation_id]
