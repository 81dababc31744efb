"""Errors of the spec reader.

* SpecError
  - InvalidSpec          the document breaks a rule the reader relies on
  - UnknownOperation     no operation has that operationId
  - UndocumentedResponse the operation documents no such status or media type
"""

from __future__ import annotations


class SpecError(Exception):
    """Root of every error raised by the `openapi` package."""


class InvalidSpec(SpecError):
    """The document cannot be read as the contract (for example a duplicate operationId)."""


class UnknownOperation(SpecError, KeyError):
    """No operation in the document has the requested operationId."""

    def __init__(self, operation_id: str, known: tuple[str, ...]) -> None:
        super().__init__(operation_id)
        self.operation_id = operation_id
        self.known = known

    def __str__(self) -> str:
        return f"no operation has operationId {self.operation_id!r}; known: {', '.join(self.known)}"


class UndocumentedResponse(SpecError, LookupError):
    """The operation documents no response (or no schema) for a status and media type."""

    def __init__(self, operation_id: str, status: int | str, media_type: str, reason: str) -> None:
        super().__init__(operation_id, status, media_type)
        self.operation_id = operation_id
        self.status = status
        self.media_type = media_type
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.operation_id} {self.status} {self.media_type}: {self.reason}"
