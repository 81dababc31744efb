"""Every example response in the spec is an answer the mock really gives: statuses, bodies and texts.

A meta-test: the spec's examples are the gateway's documented answers (gateway-behaviour.md section 3),
so each one names a scenario that drives the in-process mock into it.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from mockserver.domain import FakeClock, immediate
from openapi import load_spec, thaw
from tests.conftest import ClientFactory
from tests.web.helpers import SESSION, approve, arm, auth, bid_session, close, model_session, ping

SPEC = load_spec()
HASH = re.compile(r"0x[0-9a-f]{64}")
COMPLETION_ID, CALL_ID = re.compile(r"chatcmpl-[0-9a-f]{24}"), re.compile(r"call_[0-9a-f]{8}[0-9]+")
NOT_SIMULATED = {
    ("/paths/~1api~1v1~1session~1modelsession/post/responses/500", "unhandled"): (
        "the app-wide handler's OpenAI-style body; the session routes catch everything themselves"
    ),
    ("/paths/~1api~1v1~1models/get/responses/default", "upstreamStatus"): (
        "an upstream HTTP status passed through; the mock's model source is a table, not a service"
    ),
}

Scenario = Callable[[ClientFactory, FakeClock], httpx2.Response]


def _examples() -> dict[tuple[str, str], tuple[int, Any]]:
    """(response pointer, example name) -> (status, value); shared responses appear once."""
    found = {}
    for operation in SPEC.operations:
        for status in operation.statuses:
            node = operation.node["responses"][status]
            pointer = node["$ref"].removeprefix("#") if "$ref" in node else _op_pointer(operation, status)
            response = SPEC.resolve(node)
            for name, example in response["content"]["application/json"].get("examples", {}).items():
                found[(pointer, name)] = (0 if status == "default" else int(status), thaw(example["value"]))
    return found


def _op_pointer(operation: Any, status: str) -> str:
    return SPEC.locate("paths", operation.path, operation.method.lower(), "responses", status)


EXAMPLES = _examples()


def _op(path: str, method: str = "post") -> str:
    return f"/paths/{path.replace('/', '~1')}/{method}/responses"


APPROVE, BID, MODEL = (
    _op("/api/v1/session/approve"),
    _op("/api/v1/session/bidsession"),
    _op("/api/v1/session/modelsession"),
)
CLOSE, PING, MODELS = (
    _op("/api/v1/session/closesession"),
    _op("/api/v1/session/pingsession"),
    _op("/api/v1/models", "get"),
)


def _armed(kind: str, then: Callable[[TestClient], httpx2.Response], **options: Any) -> Scenario:
    def run(make: ClientFactory, clock: FakeClock) -> httpx2.Response:
        client = make()
        arm(client, kind, **options)
        return then(client)

    return run


def _plain(then: Callable[[TestClient], httpx2.Response], **config: Any) -> Scenario:
    return lambda make, clock: then(make(**config))


def _post(path: str, **kwargs: Any) -> Callable[[TestClient], httpx2.Response]:
    return lambda client: client.post(f"{SESSION}/{path}", **kwargs)


def _opened_then(action: Callable[[TestClient], httpx2.Response], advance: float = 0.0) -> Scenario:
    def run(make: ClientFactory, clock: FakeClock) -> httpx2.Response:
        client = make()
        model_session(client)
        immediate(clock.advance(advance))
        return action(client)

    return run


def _opened_then_armed(kind: str, action: Callable[[TestClient], httpx2.Response], **options: Any) -> Scenario:
    def run(make: ClientFactory, clock: FakeClock) -> httpx2.Response:
        client = make()
        model_session(client)
        arm(client, kind, **options)
        return action(client)

    return run


def _parallel_bids(make: ClientFactory, clock: FakeClock) -> httpx2.Response:
    """Two bidsessions of one key at once: the one that commits second meets the first's active row."""
    client, start = make(chain_latency=0.3), threading.Barrier(2)

    def bid(_: int) -> httpx2.Response:
        start.wait()
        return bid_session(client)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(bid, range(2)))
    (lost,) = [answer for answer in answers if answer.status_code == 500]
    return lost


def _models_file(make: ClientFactory, clock: FakeClock) -> httpx2.Response:
    """A mock whose model table is the example's two models."""
    table = {"default": "mistral-31-24b", "models": EXAMPLES[(f"{MODELS}/200", "models")][1]["data"]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "models.json"
        path.write_text(json.dumps(table))
        return make(models_file=path).get("/api/v1/models")


SCENARIOS: dict[tuple[str, str], Scenario] = {
    (f"{APPROVE}/200", "approved"): _plain(approve, fallback_key_note=False),
    (f"{APPROVE}/200", "approvedWithFallbackKey"): _plain(approve),
    (f"{APPROVE}/200", "noPrivateKey"): _armed("no_signing_key", approve),
    (f"{APPROVE}/200", "upstreamError"): _armed("approve_error", approve),
    (f"{APPROVE}/200", "upstreamClientError"): _armed("approve_error", approve, status=400, message="bad amount"),
    (f"{APPROVE}/200", "upstreamUnreachable"): _armed("upstream_unreachable", approve),
    ("/components/responses/KeyLookupFailed", "keyNotFound"): _armed("auth_key_not_found", ping),
    ("/components/responses/Unauthorized", "missing"): _plain(_post("pingsession")),
    ("/components/responses/Unauthorized", "badFormat"): _plain(_post("pingsession", headers=auth("bearer"))),
    ("/components/responses/Unauthorized", "invalid"): _plain(lambda c: ping(c, key="sk-Nobody.x")),
    ("/components/responses/Unauthorized", "noUser"): _armed("auth_no_user", close),
    ("/components/responses/ValidationFailed", "invalidJson"): _plain(
        _post("modelsession", params={"model_id": "m"}, content=b"{bad", headers={"Content-Type": "application/json"})
    ),
    ("/components/responses/ValidationFailed", "missingQueryAndBody"): _plain(_post("modelsession", headers=auth())),
    ("/components/responses/ValidationFailed", "badFields"): _plain(
        lambda c: model_session(c, sessionDuration="abc", directPayment=[], failover="maybe")
    ),
    ("/components/responses/ValidationFailed", "fractionalDuration"): _plain(
        lambda c: model_session(c, sessionDuration=1.5)
    ),
    ("/components/responses/ValidationFailed", "notAnObject"): _plain(
        _post("bidsession", params={"bid_id": "b"}, json=[1], headers=auth())
    ),
    ("/components/responses/ValidationFailed", "badAmount"): _plain(lambda c: approve(c, amount="0x10")),
    ("/components/responses/HttpsRequired", "plainHttp"): _plain(
        _post("pingsession", headers={"Host": "api.mor.org", **auth()}), enforce_https=True
    ),
    ("/components/responses/AuthBackendFailed", "authBackend"): _armed("auth_backend", ping),
    (f"{BID}/200", "created"): _plain(bid_session),
    (f"{BID}/200", "createdWithOwnKey"): _plain(bid_session, fallback_key_note=False),
    (f"{BID}/500", "upstreamRefused"): _armed("create_fail", bid_session, message="bid not found"),
    (f"{BID}/500", "missingEnvironment"): _armed("missing_environment", bid_session),
    (f"{BID}/500", "noSigningKey"): _armed("no_signing_key", bid_session),
    (f"{BID}/500", "noSessionId"): _armed("no_session_id", bid_session),
    (f"{BID}/500", "authBackend"): _armed("auth_backend", bid_session),
    (f"{BID}/500", "concurrentBid"): _parallel_bids,
    (f"{MODEL}/200", "createdByName"): _plain(model_session),
    (f"{MODEL}/200", "createdById"): _plain(
        lambda c: model_session(c, "0xabababababababababababababababababababababababababababababababab")
    ),
    (f"{MODEL}/400", "noSigningKey"): _armed("no_signing_key", model_session),
    (f"{MODEL}/400", "badBlockchainId"): _armed("bad_blockchain_id", model_session),
    (f"{MODEL}/400", "noSessionId"): _armed("no_session_id", model_session),
    (f"{MODEL}/400", "noDefaultModel"): _armed("default_model_error", model_session),
    (f"{MODEL}/400", "keyNotFound"): _armed("auth_key_not_found", model_session),
    (f"{MODEL}/500", "upstreamRefused"): _plain(lambda c: model_session(c, sessionDuration=299)),
    (f"{MODEL}/500", "upstreamUnreachable"): _armed("upstream_unreachable", model_session),
    (f"{MODEL}/500", "int64Duration"): _plain(lambda c: model_session(c, sessionDuration=2**63)),
    (f"{MODEL}/500", "dateOverflow"): _plain(lambda c: model_session(c, sessionDuration=10**12)),
    (f"{MODEL}/500", "notValidUpstream"): _armed("verify_fail", model_session),
    (f"{MODEL}/500", "keyRowVanished"): _armed("key_row_vanished", model_session),
    (f"{MODEL}/500", "automationDisabled"): _armed(
        "automation_disabled", lambda c: model_session(c, sessionDuration=0)
    ),
    (f"{MODEL}/500", "authBackend"): _armed("auth_backend", model_session),
    (f"{CLOSE}/200", "noSession"): _plain(close),
    (f"{CLOSE}/200", "expired"): _opened_then(close, advance=3601),
    (f"{CLOSE}/200", "closed"): _opened_then(close),
    (f"{CLOSE}/500", "closeFailed"): _opened_then_armed("close_fail", close),
    (f"{CLOSE}/500", "otherError"): _armed("close_error", close),
    (f"{CLOSE}/500", "authBackend"): _armed("auth_backend", close),
    (f"{PING}/200", "noSession"): _plain(ping),
    (f"{PING}/200", "expired"): _opened_then(ping, advance=3601),
    (f"{PING}/200", "alive"): _opened_then(ping),
    (f"{PING}/200", "dead"): _opened_then_armed("ping_dead", ping),
    (f"{PING}/200", "deadEmptyStream"): _opened_then_armed(
        "ping_dead", ping, message="No response received from chat completion"
    ),
    (f"{PING}/200", "error"): _armed("ping_error", ping),
    (f"{MODELS}/200", "models"): _models_file,
    (f"{MODELS}/500", "fetchFailed"): _armed("models_error", lambda c: c.get("/api/v1/models")),
}


CHAT, EMBEDDINGS = _op("/api/v1/chat/completions"), _op("/api/v1/embeddings")
UNKNOWN_SESSION = "0x" + "ab" * 32


def _chat(**body: Any) -> Callable[[TestClient], httpx2.Response]:
    request = {"model": "mistral-31-24b", "messages": [{"role": "user", "content": "hello"}], **body}
    return lambda client: client.post("/api/v1/chat/completions", json=request, headers=auth())


def _embed(**body: Any) -> Callable[[TestClient], httpx2.Response]:
    request = {"model": "text-embedding-bge-m3", "input": "hello", **body}
    return lambda client: client.post("/api/v1/embeddings", json=request, headers=auth())


def _raw(path: str, body: dict[str, Any] | bytes) -> Callable[[TestClient], httpx2.Response]:
    if isinstance(body, bytes):
        headers = {"Content-Type": "application/json", **auth()}
        return lambda client: client.post(path, content=body, headers=headers)
    return lambda client: client.post(path, json=body, headers=auth())


def _told(
    reply: dict[str, Any], then: Callable[[TestClient], httpx2.Response], at: float = 1741219200, times: int = 1
) -> Scenario:
    """The provider is told what to answer `times` in a row (the admin reply queue), at a set time."""

    def run(make: ClientFactory, clock: FakeClock) -> httpx2.Response:
        client = make()
        immediate(clock.set(at))
        for _ in range(times):
            assert client.post("/__admin/replies", json=reply).status_code == 201
        return then(client)

    return run


def _automation_off(then: Callable[[TestClient], httpx2.Response]) -> Scenario:
    def run(make: ClientFactory, clock: FakeClock) -> httpx2.Response:
        client = make()
        assert client.put("/__admin/keys/sk-AbC123/automation", json={"enabled": False}).status_code == 200
        return then(client)

    return run


CHAT_SCENARIOS: dict[tuple[str, str], Scenario] = {
    (f"{CHAT}/200", "completion"): _told({"content": "Hello! How can I help?"}, _chat()),
    (f"{CHAT}/200", "toolCalls"): _told(
        {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]},
        _chat(messages=[{"role": "user", "content": "What is the weather in Paris?"}]),
    ),
    (f"{CHAT}/400", "noSession"): _armed("key_row_vanished", _chat()),
    (f"{CHAT}/400", "upstreamClientError"): _told(  # both of the gateway's attempts
        {"error": {"status": 400, "body": '{"providerModelError":"context length exceeded"}'}}, _chat(), times=2
    ),
    (f"{CHAT}/403", "automationDisabled"): _automation_off(_chat()),
    ("/components/responses/ChatValidationFailed", "invalidJson"): _plain(
        _raw("/api/v1/chat/completions", b'{"messages": [')
    ),
    ("/components/responses/ChatValidationFailed", "noMessages"): _plain(
        _raw("/api/v1/chat/completions", {"model": "x"})
    ),
    ("/components/responses/ChatValidationFailed", "badTypes"): _plain(
        _raw("/api/v1/chat/completions", {"messages": "hi", "n": 1.5})
    ),
    ("/components/responses/ChatValidationFailed", "noRole"): _plain(
        _raw("/api/v1/chat/completions", {"messages": [{"content": "x"}]})
    ),
    (f"{CHAT}/500", "openFailed"): _armed("create_fail", _chat()),
    (f"{CHAT}/500", "openUnreachable"): _armed("upstream_unreachable", _chat()),
    (f"{CHAT}/500", "sessionExpired"): _armed("session_expired", _chat()),
    (f"{CHAT}/500", "sessionNotFound"): _plain(_chat(session_id=UNKNOWN_SESSION)),
    (f"{CHAT}/500", "authBackend"): _armed("auth_backend", _chat()),
    (f"{CHAT}/500", "unusableBody"): _told({"raw_body": "{}"}, _chat()),
    (f"{CHAT}/503", "unreachable"): _armed("chat_unreachable", _chat()),
    (f"{CHAT}/default", "badGateway"): _armed(
        "chat_upstream_error", _chat(), status=502, body='{"error":"bad gateway"}'
    ),
    (f"{EMBEDDINGS}/200", "floats"): _plain(_embed(dimensions=3)),
    (f"{EMBEDDINGS}/400", "noSession"): _armed("key_row_vanished", _embed()),
    ("/components/responses/EmbeddingValidationFailed", "noInput"): _plain(
        _raw("/api/v1/embeddings", {"model": "text-embedding-bge-m3"})
    ),
    ("/components/responses/EmbeddingValidationFailed", "tokenIds"): _plain(
        _raw("/api/v1/embeddings", {"input": [1, 2]})
    ),
    (f"{EMBEDDINGS}/500", "automationDisabled"): _automation_off(_embed()),
    (f"{EMBEDDINGS}/500", "sessionNotFound"): _plain(_embed(session_id=UNKNOWN_SESSION)),
    (f"{EMBEDDINGS}/500", "authBackend"): _armed("auth_backend", _embed()),
    (f"{EMBEDDINGS}/503", "unreachable"): _armed("chat_unreachable", _embed()),
    (f"{EMBEDDINGS}/default", "upstreamStatus"): _armed(
        "chat_upstream_error", _embed(), status=502, body='{"error":"bad gateway"}'
    ),
}
SCENARIOS.update(CHAT_SCENARIOS)


def _shape(value: Any) -> Any:
    """Ids and hashes compared by shape: every 0x + 64 hex string (inside texts too) becomes one placeholder."""
    if isinstance(value, str):
        return CALL_ID.sub("call_<id>", COMPLETION_ID.sub("chatcmpl-<id>", HASH.sub("0x<64 hex>", value)))
    if isinstance(value, dict):
        return {name: _shape(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return value


def test_every_example_has_a_scenario_or_a_reason() -> None:
    assert set(SCENARIOS) | set(NOT_SIMULATED) == set(EXAMPLES)
    assert not set(SCENARIOS) & set(NOT_SIMULATED)


@pytest.mark.parametrize("where", sorted(SCENARIOS), ids=lambda where: f"{where[0].split('/')[-2]}:{where[1]}")
def test_the_mock_gives_the_documented_answer(
    make_client: ClientFactory, clock: FakeClock, where: tuple[str, str]
) -> None:
    status, expected = EXAMPLES[where]
    response = SCENARIOS[where](make_client, clock)
    assert response.status_code == status or (status == 0 and response.status_code >= 400), response.text
    assert _shape(response.json()) == _shape(expected)
