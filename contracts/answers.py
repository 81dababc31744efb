"""Checks of the answers the suite receives: status, content type and body against the spec, and the
rule a wrong answer breaks. No Schemathesis here (its checks are in contracts/checks.py), so the plugin
can import this before pytest has set up assertion rewriting."""

from __future__ import annotations

from typing import Any

import requests

from openapi import BodyError, Operation, UndocumentedResponse, Validators, load_spec

VALIDATORS = Validators(load_spec())


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
