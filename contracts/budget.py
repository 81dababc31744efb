"""A contract test's share of the run's session budget (the `budget` fixture)."""

from __future__ import annotations

import pytest

from contracts.runtime import Run
from contracts.safety import MACHINE_SHARE


class Budget:
    """The session budget of one test (its node id owns its reservation)."""

    def __init__(self, run: Run, owner: str) -> None:
        self.run, self.owner = run, owner
        self.opened_before = len(run.ledger.opened)  # sessions the run had opened when the test began

    def free(self, keep: int = 0) -> int | None:
        return self.run.ledger.free(self.owner, keep)

    def spare(self) -> int | None:
        """Sessions free for creates beyond the test's need, once the state machine's share is left."""
        return self.free(keep=MACHINE_SHARE)

    def spent(self) -> int:
        """Sessions the run opened since this test began."""
        return len(self.run.ledger.opened) - self.opened_before

    def need(self, sessions: int, what: str, *, reserved: bool = False) -> None:
        """Skip the test, saying why, unless it may open `sessions` more sessions (with `reserved`: unless its
        reservation holds them, under a cap)."""
        short = reserved and self.run.ledger.cap is not None and self.run.ledger.reserved.get(self.owner, 0) < sessions
        if short or not self.run.ledger.may_open(self.owner, sessions):
            pytest.skip(f"the session cap ({self.run.ledger.cap}) leaves no room for {what}: raise --max-sessions")
