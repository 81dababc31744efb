"""The mock answers chat completions and embeddings as v1.14.0 did: every sequence of observed-v1.14.0.md
section 7, recorded answers out, in-process with the memory store and with a real redis-server (the
served mock's chat is proven by the OpenAI SDK's tests and the contract suite's gallery runs).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mockserver.config import Config, SelfCheck
from mockserver.web.app import create_app
from tests.fidelity.observed import PREFIX, Step
from tests.fidelity.observed_chat import (
    BAD_JSON,
    COMPLETION,
    EMBEDDINGS,
    EMBEDDINGS_422,
    SEQUENCES,
    STREAM_DONE,
    Setup,
)
from tests.fidelity.test_observed import KEY, ORPHAN, START, Ids
from tests.served import KEYS

REVOKED = KEYS[1]
USED = {"key": KEY, "revoked": REVOKED, "orphan": ORPHAN}
CHAT_PATH, EMBEDDINGS_PATH = "/api/v1/chat/completions", "/api/v1/embeddings"


class Target:
    """The in-process mock (a store, the automation flag) as a TestClient."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def send(self, method: str, path: str, key: str = KEY, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kwargs)

    def fresh(self) -> None:
        """No session, fault or queued reply; the clock one second after a sync pass."""
        for path in ("/__admin/state", "/__admin/faults", "/__admin/replies"):
            assert self.client.delete(path).status_code == 200
        assert self.client.put("/__admin/clock", json={"now": START}).status_code == 200


@pytest.fixture(scope="module", params=["memory", "redis"])
def targets(request: pytest.FixtureRequest) -> Iterator[dict[bool, Target]]:
    """One mock with the system-wide automation on and one with it off."""
    store = None if request.param == "memory" else request.getfixturevalue("redis_url")
    with tempfile.TemporaryDirectory() as folder:
        keys = Path(folder) / "keys.txt"
        keys.write_text(f"{KEY}\nrevoked {REVOKED}\norphan {ORPHAN}\n", encoding="utf-8")
        made = {
            automation: create_app(
                Config(
                    keys_file=keys,
                    admin=True,
                    self_check=SelfCheck.RAISE,
                    store=store,
                    revoked_keys_work=True,
                    automation=automation,
                    seed=1,
                )
            )
            for automation in (True, False)
        }
        with TestClient(made[True]) as on, TestClient(made[False]) as off:
            yield {True: Target(on), False: Target(off)}


class KeyIds(Ids):
    """Ids, with `<K>` standing for the prefix of the key the sequence uses."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def expect(self, expected: Any, actual: Any) -> Any:
        return self.key[:9] if expected == PREFIX else super().expect(expected, actual)


def _answer(target: Target, step: Step, key: str) -> tuple[int, Any]:
    if step.action in {"chat", "emb"}:
        response = target.send("POST", CHAT_PATH if step.action == "chat" else EMBEDDINGS_PATH, key, json=step.arg)
    elif step.action == "model":
        body = {"sessionDuration": step.duration}
        response = target.send("POST", "/api/v1/session/modelsession", key, params={"model_id": step.arg}, json=body)
    else:
        response = target.send("POST", f"/api/v1/session/{step.action}session", key)
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return response.status_code, _stream(response.text)
    return response.status_code, response.json()


def _stream(text: str) -> str:
    """A stream that ended with [DONE] after JSON chunks is STREAM_DONE; any other is its bytes."""
    frames = [frame for frame in text.split("\n\n") if frame]
    chunks = [json.loads(frame.removeprefix("data: ")) for frame in frames[:-1]]
    kinds = {chunk.get("object") for chunk in chunks}
    return STREAM_DONE if frames and frames[-1] == "data: [DONE]" and kinds == {"chat.completion.chunk"} else text


def _shape(expected: Any, actual: Any) -> Any:
    """The recorded body; for a body recorded by kind, the actual one when it is of that kind."""
    if expected == COMPLETION and isinstance(actual, dict) and actual.get("object") == "chat.completion":
        return actual
    if expected == EMBEDDINGS and isinstance(actual, dict) and actual.get("object") == "list":
        return actual if all(item.get("object") == "embedding" for item in actual["data"]) else expected
    return expected


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_chat_and_embeddings_answer_as_the_gateway_did(targets: dict[bool, Target], name: str) -> None:
    setup: Setup = SEQUENCES[name]
    target = targets[setup.automation]
    target.fresh()
    ids = KeyIds(USED[setup.key])
    for number, step in enumerate(setup.steps, start=1):
        status, body = _answer(target, step, ids.key)
        expected = ids.expect(_shape(step.body, body), body)
        assert (status, body) == (step.status, expected), f"{name}, step {number}: {step}"


def test_bad_json_and_bad_embeddings_bodies_get_the_exact_422s(targets: dict[bool, Target]) -> None:
    target = targets[True]
    target.fresh()
    raw, expected = BAD_JSON
    for key in (KEY, "sk-NoSuch.x"):  # before the key is checked
        response = target.client.post(
            CHAT_PATH, content=raw, headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        )
        assert (response.status_code, response.json()) == (422, expected)
    for body, answer in EMBEDDINGS_422:
        response = target.send("POST", EMBEDDINGS_PATH, json=body)
        assert (response.status_code, response.json()) == (422, answer)
    assert target.send("POST", "/api/v1/session/pingsession").json()["status"] == "no_session"


def test_embeddings_routing_needs_no_key(targets: dict[bool, Target]) -> None:
    client = targets[True].client
    wrong_method = client.get(EMBEDDINGS_PATH)
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"detail": "Method Not Allowed"})
    assert wrong_method.headers["allow"] == "POST"
    slash = client.post(EMBEDDINGS_PATH + "/")
    assert (slash.status_code, slash.json()) == (404, {"detail": "Not Found"})
