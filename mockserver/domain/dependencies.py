"""The gateway's own dependencies besides the proxy-router, each a small interface: where their faults are taken.

The auth backend (every keyed operation, before validation), the key's row (read under the session lock
when a chat needs the key's session), the models list's source and the signing key (approve). Each
answers what the dependency does; `SimulatedDependencies` answers from the fault plan, taking the kinds
`catalogue.STEPS` gives each step, in order.
"""

from __future__ import annotations

from typing import Protocol

from mockserver.domain.catalogue import NO_ACTIVE_SESSION, STEPS, Step, auth_error
from mockserver.domain.errors import CreateRefused, DomainError
from mockserver.domain.faults import Attempt, FaultPlan

EVERY_KEY = ""
"""The key the models list's faults are taken for: it sends none, so only a fault armed for every key breaks it."""


class AuthBackend(Protocol):
    async def check(self, key: str, attempt: Attempt) -> DomainError | None:
        """The key check behind authentication: None, or the error it fails with."""
        ...


class KeyRows(Protocol):
    async def find(self, key: str, attempt: Attempt) -> DomainError | None:
        """The key's row under the session lock (chat without a session_id): None, or why it is not found."""
        ...


class ModelSource(Protocol):
    async def failure(self, attempt: Attempt) -> str | None:
        """Why the models list cannot be fetched, if it cannot."""
        ...


class SigningKeys(Protocol):
    async def missing(self, key: str, attempt: Attempt) -> bool:
        """Whether approve finds no private key and no fallback key."""
        ...


class GatewayDependencies(AuthBackend, KeyRows, ModelSource, SigningKeys, Protocol):
    """All four, as the mock's state holds them."""


class SimulatedDependencies:
    """The gateway's dependencies working, unless the fault plan breaks them."""

    def __init__(self, faults: FaultPlan) -> None:
        self.faults = faults

    async def check(self, key: str, attempt: Attempt) -> DomainError | None:
        fault = await self.faults.take_first(STEPS[Step.AUTH], key, attempt=attempt)
        return None if fault is None else auth_error(fault)

    async def find(self, key: str, attempt: Attempt) -> DomainError | None:
        fault = await self.faults.take_first(STEPS[Step.KEY_ROW], key, attempt=attempt)
        return None if fault is None else CreateRefused(NO_ACTIVE_SESSION)

    async def failure(self, attempt: Attempt) -> str | None:
        fault = await self.faults.take_first(STEPS[Step.MODELS], EVERY_KEY, attempt=attempt)
        return None if fault is None else fault.text

    async def missing(self, key: str, attempt: Attempt) -> bool:
        return await self.faults.take_first(STEPS[Step.SIGNING_KEY], key, attempt=attempt) is not None
