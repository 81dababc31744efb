"""Errors of the web layer.

* WebError
  - RouteTableError   the spec and the handler table disagree (raised at app creation)
  - SelfCheckFailed   a response the mock built breaks the spec (raised in self-check "raise" mode)
  - HandlerMisuse     a handler was called without what the pipeline guarantees it (a key, a body)
"""

from __future__ import annotations


class WebError(Exception):
    """Root of every error raised by `mockserver.web`."""


class RouteTableError(WebError):
    """An operation of the spec has no handler, or a handler has no operation."""


class HandlerMisuse(WebError):
    """A handler got a call the pipeline never makes: no authenticated key, or no validated body."""


class SelfCheckFailed(WebError, AssertionError):
    """The mock answered with a body its own spec forbids."""

    def __init__(self, operation_id: str, status: int, problems: list[str]) -> None:
        super().__init__(operation_id, status, problems)
        self.operation_id = operation_id
        self.status = status
        self.problems = problems

    def __str__(self) -> str:
        listed = "\n  ".join(self.problems)
        return f"self-check: {self.operation_id} answered {self.status} with a body the spec forbids:\n  {listed}"


def check_handlers(document: str, operations: set[str], handlers: set[str]) -> None:
    """Every operation of `document` has a handler and every handler an operation.

    Raises:
        RouteTableError: they disagree (the mock does not start).
    """
    missing, orphans = operations - handlers, handlers - operations
    if missing or orphans:
        raise RouteTableError(
            f"{document} and handlers disagree: operations without a handler: {sorted(missing)}; "
            f"handlers without an operation: {sorted(orphans)}"
        )
