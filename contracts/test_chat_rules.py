"""One fixed scenario per chat rule (C1-C6), on the run's first key: short, deterministic, named by rule.

Chat costs tokens on a real gateway: against a URL these run only with `--allow-chat` (else each skips
with `--allow-chat not given`, and the summary reads the rules NOT CHECKED without failing the run), and
within `--max-chats`. They run first (contracts/plugin.py), in this file's order, and open few sessions:
C3's chat opens the key's session, C2's chat on another model replaces it, C1 and C5 reuse that one, C4's
embeddings replace it, and C6 opens one of the run's short duration when it can move the clock (four
sessions against a faithful gateway); last, with the admin clock, C3 again: a chat-opened session lasts the
key's automation duration.
A scenario starts from what the previous one left when that one passed, else from a closed session.
Sessions a chat opens are counted against the session cap like the creates' (learned through ping).
Every answer is checked against the spec, streams event by event, before the rule is judged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from contracts.answers import expect, expect_answer
from contracts.api import CHAT, CLOSE, EMBEDDINGS, MODEL_SESSION, PING, labels
from contracts.budget import Budget
from contracts.chat import (
    AUTOMATION_OFF,
    EMBEDDINGS_AUTOMATION_OFF,
    NO_DURATION_CONTROL,
    automation_path,
    chat_body,
    embeddings_body,
    expect_chat,
    expect_stream,
    is_stream,
    need_chat,
)
from contracts.runtime import Run
from openapi import Operation

UNKNOWN_SESSION = "0x" + "ab" * 32  # a well-formed session id no one opened


@dataclass
class Left:
    """What the first key holds after the last chat scenario that passed (`known=False`: start clean)."""

    known: bool = False
    session_id: str | None = None
    model: str | None = None


class Chat:
    """One scenario's requests for the first key: each answer checked, each chat within the chat cap,
    each session a chat may open within the session budget."""

    def __init__(self, run: Run, budget: Budget, left: Left) -> None:
        self.run, self.budget, self.key = run, budget, run.keys[0]
        self.now = Left(left.known, left.session_id, left.model)
        self.left = left
        left.known = False  # unknown unless this scenario passes (`leave`)

    def send(self, operation: Operation, body: dict[str, Any], rule: str) -> requests.Response:
        need_chat(self.run, 1, f"{rule}'s {operation.label}")
        return self.run.client.post(operation.path, key=self.key, json=body)

    def chat(self, model: str | None, rule: str, *, stream: bool = False, session_id: str | None = None) -> Any:
        """A chat that must succeed (a JSON completion, or a stream ending with [DONE])."""
        response = self.send(CHAT, chat_body(model, stream=stream, session_id=session_id), rule)
        return expect_chat(response, stream=stream, rule=rule)

    def embed(self, model: str | None, rule: str) -> Any:
        return expect_answer(EMBEDDINGS, self.send(EMBEDDINGS, embeddings_body(model), rule), rule=rule)

    def may_open(self, what: str) -> None:
        self.budget.need(1, what)

    def ping(self, rule: str) -> tuple[str, str | None]:
        body = expect_answer(PING, self.run.client.post(PING.path, key=self.key), rule=rule)
        return str(body["status"]), body.get("session_id")

    def kept(self, session: str, rule: str, what: str) -> None:
        """After `what` on the key's session, ping must still show it: gone is C6, another one `rule`."""
        status, seen = self.ping(rule)
        expect(status == "alive", "C6", f"the key's session {session} did not survive {what}: ping says {status}")
        expect(seen == session, rule, f"{what} replaced the key's session {session} by {seen}")

    def replaced(self, old: str, send: Callable[[], object], rule: str, what: str) -> str:
        """`send` (a chat or embeddings request that may open a session) must replace the key's session `old`."""
        self.may_open(f"{rule}'s new session")
        send()
        new = self.alive(rule)
        expect(new != old, rule, f"{what} kept the key's session {old} instead of replacing it")
        return new

    def alive(self, rule: str) -> str:
        """The key's session, which must be alive; a session this run had not seen is counted as opened."""
        status, session_id = self.ping(rule)
        expect(status == "alive" and session_id is not None, rule, f"ping must report an alive session, got {status}")
        self.run.ledger.count(str(session_id))
        return str(session_id)

    def close(self, rule: str) -> dict[str, Any]:
        self.now = Left(True)
        body: dict[str, Any] = expect_answer(CLOSE, self.run.client.post(CLOSE.path, key=self.key), rule=rule)
        return body

    def model_session(self, model: str, rule: str, duration: int | None = None) -> str:
        self.may_open(f"{rule}'s modelsession")
        body = {"sessionDuration": duration or self.run.settings.session_duration}
        answer = expect_answer(
            MODEL_SESSION,
            self.run.client.post(MODEL_SESSION.path, key=self.key, params={"model_id": model}, json=body),
            rule=rule,
        )
        self.now = Left(True, str(answer["session_id"]), model)
        return self.now.session_id or ""

    def session_on(self, model: str, rule: str) -> str:
        """The key's session on `model`: the one the previous scenario left, or one a modelsession opens."""
        if self.now.known and self.now.model == model and self.now.session_id:
            return self.now.session_id
        if not self.now.known:
            self.run.fresh(self.key)
        return self.model_session(model, rule)

    def holds(self, session_id: str | None, model: str | None) -> None:
        self.now = Left(True, session_id, model)

    def leave(self) -> None:
        self.left.known, self.left.session_id, self.left.model = True, self.now.session_id, self.now.model


@pytest.fixture(scope="module")
def left() -> Left:
    return Left()


@pytest.fixture
def chat(run: Run, budget: Budget, left: Left) -> Chat:
    if not run.settings.chat_allowed:
        need_chat(run, 0, "chat")
    if len(run.model_names) < 2:
        pytest.skip(f"the target lists {len(run.model_names)} model(s): the chat rules need 2")
    return Chat(run, budget, left)


def _models(run: Run) -> tuple[str, str]:
    """Two listed models; the second not the default one where the target lists a third (a chat that
    fell back to the default model must not look like a switch to it)."""
    first, *others = run.model_names
    second = next((name for name in others if run.models[name] != run.default_model), others[0])
    return first, second


@pytest.mark.contract(rules=("C3",), operations=labels(CHAT, EMBEDDINGS, PING), sessions=0)
def test_c3_chat_opens_a_session_only_when_automation_allows(
    run: Run, chat: Chat, check: Callable[[str], None]
) -> None:
    """With no session, chat opens one (automation on) or answers the gateway's 403 and opens nothing.
    On the mock (its admin API says whether automation is on), both ways are checked."""
    model, _ = _models(run)
    run.fresh(chat.key)
    chat.holds(None, None)
    setting = run.client.get(automation_path(chat.key)).json() if run.controls_faults else {}
    if setting:
        _refused_while_automation_is_off(run, chat, model, enabled=bool(setting["enabled"]))
    chat.may_open("C3's chat-opened session")
    response = chat.send(CHAT, chat_body(model), "C3")
    if response.status_code == 403 and not setting.get("effective"):
        _refused(chat, response)
    else:
        expect_answer(CHAT, response, rule="C3")
        chat.holds(chat.alive("C3"), model)
    check("C3")
    chat.leave()


def _refused(chat: Chat, response: requests.Response, *, status: int = 403, detail: str = AUTOMATION_OFF) -> None:
    """The gateway's automation refusal (a JSON answer even for a stream), and no session opened."""
    body = expect_answer(CHAT if status == 403 else EMBEDDINGS, response, status=status, rule="C3")
    expect(body == {"detail": detail}, "C3", f"a request refused for automation answered {body}")
    status_now, _ = chat.ping("C3")
    expect(status_now == "no_session", "C3", f"a request refused for automation opened a session: {status_now}")


def _refused_while_automation_is_off(run: Run, chat: Chat, model: str, *, enabled: bool) -> None:
    """The mock with the key's automation off: chat (plain and streamed) 403, embeddings 500, nothing opened."""
    path = automation_path(chat.key)
    run.client.put(path, json={"enabled": False})
    try:
        _refused(chat, chat.send(CHAT, chat_body(model), "C3"))
        _refused(chat, chat.send(CHAT, chat_body(model, stream=True), "C3"))
        detail = EMBEDDINGS_AUTOMATION_OFF
        _refused(chat, chat.send(EMBEDDINGS, embeddings_body(None), "C3"), status=500, detail=detail)
    finally:
        run.client.put(path, json={"enabled": enabled})


@pytest.mark.contract(rules=("C2",), operations=labels(CHAT, PING), sessions=0)
def test_c2_chat_on_another_model_replaces_the_session(run: Run, chat: Chat, check: Callable[[str], None]) -> None:
    model, other = _models(run)
    old = chat.session_on(model, "C2")
    new = chat.replaced(old, lambda: chat.chat(other, "C2"), "C2", f"a chat on {other} (from {model})")
    chat.holds(new, other)
    if run.ledger.may_open(chat.budget.owner):  # the new session is on `other`: modelsession reuses it
        on_other = chat.model_session(other, "C2")
        expect(on_other == new, "C2", f"the chat on {other} opened {new}, but modelsession on {other} gave {on_other}")
    check("C2")
    chat.leave()


@pytest.mark.contract(rules=("C1", "C4", "C6"), operations=labels(CHAT, MODEL_SESSION, PING), sessions=0)
def test_c1_chat_reuses_the_keys_session(run: Run, chat: Chat, check: Callable[[str], None]) -> None:
    """A chat on the session's model, plain and streamed, uses it unchanged; modelsession shares it (C4)."""
    _, model = _models(run)
    session = chat.session_on(model, "C1")
    chat.chat(model, "C1")
    chat.kept(session, "C1", f"a chat on {model}")
    chat.chat(model, "C1", stream=True)
    chat.kept(session, "C1", f"a streamed chat on {model}")
    check("C1")
    if run.ledger.may_open(chat.budget.owner):  # a reuse opens nothing, but a broken gateway might
        shared = chat.model_session(model, "C4")
        expect(shared == session, "C4", f"modelsession on {model} after chat gave {shared}, not the chat's {session}")
        check("C4")
    chat.leave()


@pytest.mark.contract(rules=("C5", "C6"), operations=labels(CHAT, PING), sessions=0)
def test_c5_a_body_session_id_is_used_as_given(run: Run, chat: Chat, check: Callable[[str], None]) -> None:
    """A body session_id bypasses the key's session: another model does not switch it, an unknown id
    fails upstream (a JSON error, or in a stream one error frame and no [DONE]) and changes nothing."""
    other, model = _models(run)
    session = chat.session_on(model, "C5")
    chat.chat(other, "C5", session_id=session)
    chat.kept(session, "C5", f"a chat on {other} with session_id {session}")
    failed = chat.send(CHAT, chat_body(model, session_id=UNKNOWN_SESSION), "C5")
    expect(failed.status_code >= 400, "C5", f"a chat on a session no one opened answered {failed.status_code}")
    expect_answer(CHAT, failed, status=failed.status_code)
    streamed = chat.send(CHAT, chat_body(model, stream=True, session_id=UNKNOWN_SESSION), "C5")
    if is_stream(streamed):
        expect_stream(streamed, ends="error")
    else:  # a gateway may refuse before streaming; it must still be a documented error
        status = streamed.status_code
        expect(status >= 400, "C5", f"a streamed chat on an unknown session answered {status}")
        expect_answer(CHAT, streamed, status=streamed.status_code)
    chat.kept(session, "C5", "chats with an unknown session_id")
    check("C5")
    chat.leave()


@pytest.mark.contract(rules=("C4",), operations=labels(EMBEDDINGS, CLOSE, PING), sessions=0)
def test_c4_embeddings_share_the_keys_one_session(run: Run, chat: Chat, check: Callable[[str], None]) -> None:
    """Embeddings (on the default embeddings model) replace a chat model's session, and close ends the
    one session they share."""
    _, other = _models(run)
    old = chat.session_on(other, "C4")
    new = chat.replaced(old, lambda: chat.embed(None, "C4"), "C4", f"embeddings (after a chat on {other})")
    closed = chat.close("C4")
    expect(closed.get("session_id") == new, "C4", f"close after embeddings answered {closed}, not their session {new}")
    status, _ = chat.ping("C4")
    expect(status == "no_session", "C4", f"after closing the one session, ping says {status}")
    check("C4")
    chat.leave()


@pytest.mark.contract(rules=("C6",), operations=labels(CHAT, PING), sessions=0)
def test_c6_nothing_is_closed_or_extended_after_chat(run: Run, chat: Chat, check: Callable[[str], None]) -> None:
    """After chat and embeddings the session is still alive; with the admin clock, a chat late in the
    session's life does not extend it."""
    model, _ = _models(run)
    duration = run.settings.session_duration
    if run.controls_time:
        run.fresh(chat.key)
        session = chat.model_session(model, "C6", duration)
        run.advance_clock(duration - 60)
    else:
        session = chat.session_on(model, "C6")
    chat.chat(model, "C6")
    chat.kept(session, "C6", f"a chat on {model}")
    if run.controls_time:
        run.advance_clock(61 + 2)
        status, seen = chat.ping("C6")
        expect(
            (status, seen) in {("expired", session), ("no_session", None)},
            "C6",
            f"a chat extended the session {session}: {duration + 3} s after it opened, ping says {status}",
        )
        chat.holds(None, None)
    check("C6")
    chat.leave()


@pytest.mark.contract(rules=("C3",), operations=labels(CHAT, PING), sessions=0)
def test_c3_a_chat_opened_session_lasts_the_keys_automation_duration(
    run: Run, chat: Chat, check: Callable[[str], None]
) -> None:
    """With the key's automation duration set to the run's session duration, the session a chat opens is
    alive just before that duration ends and expired just after it (the mock's admin API and clock)."""
    if not (run.controls_time and run.controls_faults):
        pytest.skip(NO_DURATION_CONTROL)
    model, _ = _models(run)
    duration, path = run.settings.session_duration, automation_path(chat.key)
    kept = run.client.get(path).json()["duration"]
    run.fresh(chat.key)
    chat.holds(None, None)
    run.client.put(path, json={"duration": duration})
    try:
        chat.may_open("C3's chat-opened session")
        chat.chat(model, "C3")
        session = chat.alive("C3")
        run.advance_clock(duration - 5)
        status, seen = chat.ping("C3")
        expect(
            (status, seen) == ("alive", session),
            "C3",
            f"{duration - 5} s after a chat opened {session} (the key's automation duration: {duration} s), "
            f"ping says {status} {seen}",
        )
        run.advance_clock(10)
        status, seen = chat.ping("C3")
        expect(
            (status, seen) in {("expired", session), ("no_session", None)},
            "C3",
            f"the session {session} a chat opened for {duration} s is still {status} {duration + 5} s later",
        )
    finally:
        run.client.put(path, json={"duration": kept})
    check("C3")
    chat.leave()
