"""Validation verdicts on requests seen before are remembered, never shared, and bounded."""

from __future__ import annotations

import json

import pytest

from mockserver.web import validation
from mockserver.web.validation import RememberedValidation, Validated, ValidationFailure, read_body
from mockserver.web.validation_models import request_models
from openapi import load_spec

MODELS = request_models(load_spec())
MODEL = "create_model_session_api_v1_session_modelsession_post"
CHAT = "create_chat_completion_api_v1_chat_completions_post"
GOOD = b'{"sessionDuration": 3600, "directPayment": false, "failover": false}'
QUERY = b"model_id=mistral-31-24b"


def verdict(memo: RememberedValidation, raw: bytes, query: bytes = QUERY) -> Validated | ValidationFailure:
    body = read_body(memo.models, "application/json", raw)
    return memo.validate(query, "application/json", raw, body)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The calls that reach the real validation."""
    calls: list[object] = []
    real = validation.validate

    def counting(*args: object) -> Validated | ValidationFailure:
        calls.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(validation, "validate", counting)
    return calls


def test_a_request_seen_before_gets_the_same_verdict_without_validating_again(counted: list[object]) -> None:
    memo = RememberedValidation(MODELS[MODEL])
    first, second = verdict(memo, GOOD), verdict(memo, GOOD)
    assert first == second
    assert isinstance(first, Validated)
    assert first.query == {"model_id": "mistral-31-24b"}
    assert len(counted) == 1


def test_a_caller_gets_its_own_copies(counted: list[object]) -> None:
    memo = RememberedValidation(MODELS[MODEL])
    first = verdict(memo, GOOD)
    assert isinstance(first, Validated)
    assert first.body is not None
    first.query["model_id"] = "changed"
    first.body["sessionDuration"] = 0
    again = verdict(memo, GOOD)
    assert isinstance(again, Validated)
    assert again.body is not None
    assert (again.query["model_id"], again.body["sessionDuration"]) == ("mistral-31-24b", 3600)


def test_a_failure_is_remembered_too(counted: list[object]) -> None:
    memo = RememberedValidation(MODELS[MODEL])
    bad = b'{"sessionDuration": "abc"}'
    assert verdict(memo, bad) == verdict(memo, bad)
    assert isinstance(verdict(memo, bad), ValidationFailure)
    assert len(counted) == 1


def test_verdicts_with_nested_values_or_large_bodies_are_not_kept(counted: list[object]) -> None:
    chat = RememberedValidation(MODELS[CHAT])
    raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    verdict(chat, raw, b"")
    verdict(chat, raw, b"")
    large = GOOD[:-1] + b"," + b" " * RememberedValidation.MAX_BODY + b"}"
    memo = RememberedValidation(MODELS[MODEL])
    verdict(memo, large)
    verdict(memo, large)
    assert len(counted) == 4
    assert chat.kept == memo.kept == {}


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RememberedValidation, "SIZE", 2)
    memo = RememberedValidation(MODELS[MODEL])
    for model in (b"a", b"b", b"c"):
        verdict(memo, GOOD, b"model_id=" + model)
    assert [key[0] for key in memo.kept] == [b"model_id=c"]
