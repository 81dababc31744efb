"""Errors of the session domain; each carries the gateway's exact text as `detail`.

* DomainError
  - AuthenticationFailed  the Authorization header does not name a usable API key
  - KeyLookupFailed       the key's row was not found by the second lookup (the gateway's 400)
  - AuthBackendFailed     the key could not be checked at all (the gateway's 500)
  - CreateRefused         the gateway refused to open a session (a ValueError in its handler: 400)
  - CreateFailed          a model or bid session could not be opened (R1-R3, R6)
  - CloseFailed           the upstream close failed; the session stays active (R4)
  - AutomationDisabled    chat or embeddings needed a new session and automation is off (C3)
  - ChatSessionFailed     chat or embeddings could not open their session (C3)
  - UpstreamFailed        the proxy-router answered a chat or embeddings call with an error status
  - UpstreamUnreachable   the proxy-router could not be reached for a chat or embeddings call
  - InvalidKeyFormat      a key or prefix given to the registry is not well-formed
  - UnknownKey            the registry holds no such key
  - InvalidTable          a model or bid table (file) cannot be used
  - InvalidFault          a fault cannot be armed as asked
  - InvalidTime           a fake clock cannot be moved to that time
  - NotImmediate          (immediate.py) a coroutine that waits for a shared store was run without a loop

The web layer maps these classes to HTTP statuses in one table; the domain knows no statuses.
"""

from __future__ import annotations


class DomainError(Exception):
    """Root of every error raised by `mockserver.domain`; `str(err) == err.detail`."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class AuthenticationFailed(DomainError):
    """The request's API key is missing, malformed, unknown, wrong or revoked."""


class KeyLookupFailed(DomainError):
    """The second key dependency did not find the key (`API key not found`)."""


class AuthBackendFailed(DomainError):
    """The key check itself failed (`Unexpected error validating API key: ...`)."""


class CreateRefused(DomainError):
    """The gateway refused to open a session before or after asking upstream (its ValueErrors)."""


class CreateFailed(DomainError):
    """Opening a model or bid session failed; `detail` is the gateway's 500 text."""


class CloseFailed(DomainError):
    """Closing the active session failed upstream; the session stays active (R4)."""


class AutomationDisabled(DomainError):
    """A chat or embeddings request needed a new session and automation is off (C3)."""


class ChatSessionFailed(DomainError):
    """Chat or embeddings could not open the key's session; `detail` is the text after "Error handling session: "."""


class UpstreamFailed(DomainError):
    """The proxy-router answered a chat or embeddings call with `status` and the raw `body`."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class UpstreamUnreachable(DomainError):
    """The proxy-router could not be reached for a chat or embeddings call; `detail` is httpx's text."""


class InvalidKeyFormat(DomainError, ValueError):
    """A key or prefix handed to the key registry is not in the gateway's format."""


class UnknownKey(DomainError, LookupError):
    """The key registry has no key with that prefix (or that full key)."""


class InvalidTable(DomainError, ValueError):
    """A model or bid table is inconsistent or its file cannot be read."""


class InvalidFault(DomainError, ValueError):
    """A fault was armed with an impossible count, delay or target."""


class InvalidTime(DomainError, ValueError):
    """A fake clock was asked to move outside the range a datetime can hold."""
