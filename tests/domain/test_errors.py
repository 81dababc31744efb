"""One exception root whose `detail` is the gateway's exact text."""

from __future__ import annotations

import pytest

from mockserver import domain
from mockserver.domain import (
    AuthBackendFailed,
    AuthenticationFailed,
    AutomationDisabled,
    ChatSessionFailed,
    CloseFailed,
    CreateFailed,
    CreateRefused,
    DomainError,
    InvalidFault,
    InvalidKeyFormat,
    InvalidTable,
    InvalidTime,
    KeyLookupFailed,
    NotImmediate,
    UnknownKey,
    UpstreamFailed,
    UpstreamUnreachable,
)

ERRORS = [
    AuthBackendFailed,
    AuthenticationFailed,
    AutomationDisabled,
    ChatSessionFailed,
    UpstreamUnreachable,
    AutomationDisabled,
    ChatSessionFailed,
    CloseFailed,
    CreateFailed,
    CreateRefused,
    KeyLookupFailed,
    InvalidFault,
    InvalidKeyFormat,
    InvalidTable,
    InvalidTime,
    NotImmediate,
    UnknownKey,
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
def test_errors_share_one_root_and_keep_the_detail(error: type[DomainError]) -> None:
    err = error("Invalid API key")
    assert isinstance(err, DomainError)
    assert err.detail == "Invalid API key"
    assert str(err) == "Invalid API key"
    assert err.args == ("Invalid API key",)


def test_errors_every_exported_exception_derives_from_domain_error() -> None:
    exported = [getattr(domain, name) for name in domain.__all__]
    exceptions = {obj for obj in exported if isinstance(obj, type) and issubclass(obj, BaseException)}
    assert exceptions == {DomainError, UpstreamFailed, *ERRORS}


@pytest.mark.parametrize(
    ("error", "builtin"),
    [(InvalidKeyFormat, ValueError), (InvalidTable, ValueError), (InvalidFault, ValueError), (UnknownKey, LookupError)],
    ids=["key-format", "table", "fault", "unknown-key"],
)
def test_errors_configuration_errors_are_also_builtin_errors(
    error: type[DomainError], builtin: type[Exception]
) -> None:
    assert issubclass(error, builtin)


def test_an_upstream_failure_keeps_its_status_and_raw_body() -> None:
    error = UpstreamFailed(502, '{"error":"bad gateway"}')
    assert isinstance(error, DomainError)
    assert (error.status, error.body, str(error)) == (
        502,
        '{"error":"bad gateway"}',
        'HTTP 502: {"error":"bad gateway"}',
    )
