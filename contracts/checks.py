"""Response-body checks against the spec, as a library call and as Schemathesis checks."""

from __future__ import annotations

import json
from typing import Any

import requests
import schemathesis

from openapi import BodyError, Operation, UndocumentedResponse, Validators, load_spec

VALIDATORS = Validators(load_spec())
# The beginnings of every 500 text the gateway's session routes produce (gateway-behaviour.md section 3).
GATEWAY_500_PREFIXES = (
    "Error from proxy router: ",
    "Unexpected error: ",
    "Unexpected error validating API key: ",
    "Error closing session: ",
    "Error fetching active models: ",
)


class RuleBroken(AssertionError):
    """The target's answer breaks a session rule; the message starts with the rule id."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule} broken: {message}")
        self.rule = rule


def expect(condition: bool, rule: str, message: str) -> None:
    if not condition:
        raise RuleBroken(rule, message)


class AnswerError(AssertionError):
    """An answer the suite received is not what the spec documents (status, content type or body)."""


class BodyContractError(AnswerError):
    """A response body breaks the contract; the message names each JSON path and the keyword broken."""

    def __init__(self, operation_id: str, status: int, errors: list[BodyError]) -> None:
        self.operation_id, self.status, self.errors = operation_id, status, errors
        lines = "\n".join(f"  - {error}" for error in errors)
        super().__init__(f"{operation_id} answered {status} with a body that breaks the contract:\n{lines}")


def body_errors(operation_id: str, status: int, body: Any) -> list[BodyError]:
    try:
        return VALIDATORS.body_errors(operation_id, status, body)
    except UndocumentedResponse:
        return [BodyError("$", "status", f"status {status} is not documented for {operation_id}", "-")]


def assert_body_conforms(operation_id: str, status: int, body: Any) -> None:
    """Raise BodyContractError unless `body` is what the spec documents for this operation and status.

    Example:
        assert_body_conforms("ping_session_api_v1_session_pingsession_post", 200, response.json())
    """
    errors = body_errors(operation_id, status, body)
    if errors:
        raise BodyContractError(operation_id, status, errors)


def expect_answer(
    operation: Operation, response: requests.Response, *, status: int = 200, rule: str | None = None
) -> Any:
    """Check one answer the suite received: the expected status, a JSON content type, a body the spec
    documents for that status; return the body. A wrong status raises RuleBroken when a rule is named
    (the step's rule did not hold), else AnswerError.

    Example:
        body = expect_answer(PING, client.post(PING.path, key=key), rule="R5")
    """
    if response.status_code != status:
        message = f"{operation.label} answered {response.status_code}, expected {status}: {response.text[:300]}"
        raise RuleBroken(rule, message) if rule else AnswerError(message)
    media_type = response.headers.get("content-type", "")
    if not media_type.startswith("application/json"):
        raise AnswerError(f"{operation.label} answered {status} with content type {media_type!r}, not JSON")
    try:
        body = response.json()
    except ValueError:
        raise AnswerError(
            f"{operation.label} answered {status} with a body that is not JSON: {response.text[:200]!r}"
        ) from None
    assert_body_conforms(operation.operation_id, status, body)
    return body


def _content_type(response: Any) -> str:
    values = [value for name, value in response.headers.items() if name.lower() == "content-type"]
    return str(values[0][0]) if values and values[0] else ""


def _json_or_none(response: Any) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


@schemathesis.check
def body_matches_the_gateway_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every documented JSON body, checked with readable messages (JSON path + keyword)."""
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id is None or "json" not in _content_type(response):
        return True
    try:
        VALIDATORS.response_key(operation_id, response.status_code)
    except UndocumentedResponse:
        return True  # an undocumented status is status_code_conformance's finding (405s are expected)
    assert_body_conforms(operation_id, response.status_code, _json_or_none(response))
    return None


@schemathesis.check
def server_errors_are_the_gateways(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 500 is allowed (the gateway answers documented 500s, e.g. for durations the chain refuses),
    but only with one of the gateway's own texts."""
    if response.status_code != 500:
        return True
    body = _json_or_none(response)
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str) or not detail.startswith(GATEWAY_500_PREFIXES):
        raise AssertionError(f"500 with a body the gateway never sends: {response.content[:200]!r}")
    return None
