"""The run in progress: settings, target, client, ledger and what the target lets the suite control.

Set once by the plugin at configure time (before test modules are imported), read by the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.client import Client
from contracts.safety import Ledger
from contracts.settings import Settings


@dataclass
class Run:
    settings: Settings
    base_url: str
    keys: tuple[str, ...]
    client: Client
    ledger: Ledger
    controls_time: bool  # the target has the mock's admin clock (R6 can be checked)
    controls_faults: bool  # the target has the mock's admin faults (dead pings, failing closes)
    stop: Callable[[], None] = lambda: None
    started: float = field(default_factory=time.monotonic)
    cases: int = 0  # Schemathesis cases generated (and judged) in this process
    steps: int = 0  # state-machine steps taken in this process

    @property
    def spend_allowed(self) -> bool:
        return self.settings.allow_spend or self.settings.in_process

    @property
    def bids(self) -> tuple[str, ...]:
        """Bid ids the run may use: given ones, or made-up ones against the mock (it accepts any)."""
        if self.settings.bid_ids:
            return self.settings.bid_ids
        return ("0x" + "b1" * 32, "0x" + "b2" * 32) if self.controls_faults else ()

    def report(self, teardown_problems: list[str]) -> dict[str, object]:
        """What this process's run did, for the summary (JSON-ready: xdist workers send it to the controller)."""
        return {
            "target": "the in-process mock" if self.settings.in_process else self.base_url,
            "keys": [key[:9] + "…" for key in self.keys],
            "controls_time": self.controls_time,
            "controls_faults": self.controls_faults,
            "spend_allowed": self.spend_allowed,
            "opened": len(self.ledger.opened),
            "cap": self.ledger.cap,
            "held_back": dict(self.ledger.held_back),
            "keys_used": len(self.ledger.keys_used),
            "requests": self.client.sent,
            "cases": self.cases,
            "steps": self.steps,
            "teardown_problems": teardown_problems,
        }

    def fresh(self, key: str) -> None:
        """Start a fixed scenario clean: the key's session closed and (on the mock) no fault armed for it."""
        if self.controls_faults:
            self.client.delete("/__admin/faults", params={"key": key[:9]})
        self.client.post("/api/v1/session/closesession", headers={"Authorization": f"Bearer {key}"})

    def now(self) -> float:
        """The target's clock (its admin clock when it has one)."""
        if self.controls_time:
            return float(self.client.get("/__admin/clock").json()["now"])
        return time.time()


_CURRENT: list[Run] = []


def current() -> Run:
    if not _CURRENT:
        raise RuntimeError("no contract run: run the suite as `pytest contracts ...` or `python -m contracts`")
    return _CURRENT[-1]


def begin(run: Run) -> None:
    _CURRENT.append(run)


def end() -> Run | None:
    return _CURRENT.pop() if _CURRENT else None
