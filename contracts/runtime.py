"""The run in progress: settings, target, client, ledger, the target's models and what it lets the suite
control. Built once by the plugin at configure time and kept in pytest's stash; tests get it from the
`run` fixture (contracts/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contracts.answers import expect_answer
from contracts.api import ADVANCE_CLOCK, CLOCK, CLOSE, FAULTS, KEY_STATE
from contracts.chat_budget import ChatMeter
from contracts.client import Client
from contracts.ids import SessionIds
from contracts.safety import Ledger
from contracts.settings import Settings
from contracts.transitions import Coverage

DEFAULT_MODEL_NAME = "mistral-31-24b"  # the gateway's DEFAULT_FALLBACK_MODEL


@dataclass
class Run:
    settings: Settings
    base_url: str
    keys: tuple[str, ...]
    client: Client
    ledger: Ledger
    controls_time: bool  # the target has the mock's admin clock (R6 can be checked)
    controls_faults: bool  # the target has the mock's admin faults (dead pings, failing closes)
    models: dict[str, str] = field(default_factory=dict)  # listed name or blockchain id -> blockchain id
    stop: Callable[[], None] = lambda: None
    started: float = field(default_factory=time.monotonic)
    clock_at_start: float | None = None  # the target's admin clock when the run began
    time_note: str = "the target has no admin clock"  # why the run cannot move time, when it cannot
    cases: int = 0  # Schemathesis cases generated (and judged) in this process
    steps: int = 0  # state-machine steps taken in this process
    chats: ChatMeter = field(default_factory=ChatMeter)  # chat and embeddings requests sent, and their cap
    ids: SessionIds = field(default_factory=SessionIds)  # every session id the run's answers named
    coverage: Coverage = field(default_factory=Coverage)  # the state machine's transitions tried

    @property
    def spend_allowed(self) -> bool:
        return self.settings.allow_spend or self.settings.in_process

    @property
    def bids(self) -> tuple[str, ...]:
        """Bid ids the run may use: given ones, or made-up ones against the in-process mock (it accepts any).
        Against a URL only given ones, even where the mock's admin API answers: a run with no `--bid-id` opens
        no bid session there, as against a gateway (the gallery's CI setting is such a run)."""
        if self.settings.bid_ids:
            return self.settings.bid_ids
        return ("0x" + "b1" * 32, "0x" + "b2" * 32) if self.settings.in_process else ()

    @property
    def model_names(self) -> list[str]:
        """The listed models' names (not their blockchain ids), sorted."""
        return sorted(name for name in self.models if not name.startswith("0x"))

    @property
    def default_model(self) -> str | None:
        """The blockchain id an unknown model_id falls back to, when the target lists the default model."""
        return self.models.get(DEFAULT_MODEL_NAME)

    def report(self, teardown_problems: list[str]) -> dict[str, object]:
        """What this process's run did, for the summary (JSON-ready: xdist workers send it to the controller)."""
        return {
            "target": "the in-process mock" if self.settings.in_process else self.base_url,
            "keys": [key[:9] + "…" for key in self.keys],
            "controls_time": self.controls_time,
            "time": "yes (admin clock)" if self.controls_time else f"no - {self.time_note}",
            "controls_faults": self.controls_faults,
            "spend_allowed": self.spend_allowed,
            "bids": bool(self.bids),
            "opened": len(self.ledger.opened),
            "cap": self.ledger.cap,
            "held_back": dict(self.ledger.held_back),
            "keys_used": len(self.ledger.keys_used),
            "requests": self.client.sent,
            "cases": self.cases,
            "steps": self.steps,
            "chat_allowed": self.settings.chat_allowed,
            "chats": self.chats.sent,
            "chat_cap": self.chats.cap,
            "teardown_problems": teardown_problems,
            **self.coverage.report(self.offers, self.ledger.cap),
        }

    @property
    def offers(self) -> frozenset[str]:
        """What the target offers the state machine's transitions (contracts/transitions.py) and the checks'
        reservations (a `contract` marker's `needs=`)."""
        two_models = len({self.models[name] for name in self.model_names}) >= 2
        offered = (
            ("two models", two_models),
            ("bids", bool(self.bids)),
            ("two keys", len(self.keys) >= 2),
            ("time", self.controls_time),
        )
        return frozenset(name for name, offered_ in offered if offered_)

    def fresh(self, key: str) -> None:
        """Start a fixed scenario clean: the key's session closed and (on the mock) no fault armed for it."""
        self.clear_faults(key)
        expect_answer(CLOSE, self.client.post(CLOSE.path, key=key))

    def clear_faults(self, key: str) -> None:
        """No fault armed for the key any more (on the mock; elsewhere there are none)."""
        if self.controls_faults:
            self.client.delete(FAULTS.path, params={"key": key[:9]})

    def arm(self, kind: str, key: str) -> None:
        """Arm one fault of the mock's for the key, once."""
        self.client.post(FAULTS.path, json={"kind": kind, "key": key[:9], "count": 1})

    def forget(self, key: str) -> None:
        """The mock forgets the key's session and history."""
        self.client.delete(KEY_STATE.path.replace("{prefix}", key[:9]))

    def now(self) -> float:
        """The target's clock (its admin clock when it has one)."""
        if self.controls_time:
            return float(self.client.get(CLOCK.path).json()["now"])
        return time.time()

    def advance_clock(self, seconds: float) -> None:
        self.client.post(ADVANCE_CLOCK.path, json={"seconds": seconds})

    def restore_clock(self) -> list[str]:
        """Put the target's admin clock back where it would be had the run never moved it; returns problems."""
        if self.clock_at_start is None:
            return []
        now = self.clock_at_start + (time.monotonic() - self.started)
        response = self.client.put(CLOCK.path, json={"now": now})
        return [] if response.status_code == 200 else [f"the admin clock was not restored: {response.status_code}"]


def read_models(body: Any) -> dict[str, str]:
    """name/blockchain id -> blockchain id for up to three listed models (a malformed list gives none)."""
    listed = body.get("data", []) if isinstance(body, dict) else []
    models: dict[str, str] = {}
    for model in listed[:3] if isinstance(listed, list) else []:
        if isinstance(model, dict) and isinstance(model.get("id"), str) and isinstance(model.get("blockchainID"), str):
            models[model["id"]] = models[model["blockchainID"]] = model["blockchainID"]
    return models
