"""A key's session as a small state machine, and which of its transitions a run has tried.

States (the oracle's view of one key): none (nothing yet), model A, model B (the first two listed
models), bid, failed switch (a switch to B refused by the chain after it closed A: the gateway still
holds A, closed on chain; observed-v1.14.0.md 1.1) and closed (ended by a close, a dead or expired
ping). A transition is a state and the action that leaves it; `opens` marks those that open a session
(the only ones the session cap counts). Across two keys, four more transitions are judged with the
other key on a model: a key opening, reusing, closing or switching to the model the other key holds.

The state machine (contracts/machine.py) draws uniformly from the transitions not yet tried that the
keys' states and the budget allow, then at random; the summary prints what was tried and why the rest
was not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum


class State(Enum):
    NONE = "none"
    A = "model A"
    B = "model B"
    BID = "bid"
    FAILED = "failed switch"
    CLOSED = "closed"


class Action(Enum):
    MODEL_A = "modelsession A"
    MODEL_A_OTHER_DURATION = "modelsession A, another duration"
    MODEL_B = "modelsession B"
    BID = "bidsession"
    CLOSE = "closesession"
    PING = "pingsession"
    FAIL_SWITCH = "modelsession B refused by the chain"


@dataclass(frozen=True)
class Transition:
    source: State
    action: Action
    target: State
    opens: bool = False
    other: State | None = None  # across two keys: the state the other key must be in

    @property
    def name(self) -> str:
        other = f" (other key: {self.other.value})" if self.other else ""
        return f"{self.source.value} -[{self.action.value}]-> {self.target.value}{other}"

    @property
    def needs(self) -> frozenset[str]:
        """What the target must offer: two models, bid ids, two keys."""
        needs = {"bids"} if self.action is Action.BID or State.BID in (self.source, self.target) else set()
        if State.B in (self.source, self.target, self.other) or State.FAILED in (self.source, self.target):
            needs.add("two models")
        return frozenset(needs | ({"two keys"} if self.other else set()))


S, A = State, Action
ONE_KEY = (
    Transition(S.NONE, A.MODEL_A, S.A, opens=True),
    Transition(S.A, A.MODEL_A, S.A),
    Transition(S.A, A.MODEL_A_OTHER_DURATION, S.A),
    Transition(S.A, A.PING, S.A),
    Transition(S.A, A.MODEL_B, S.B, opens=True),
    Transition(S.A, A.BID, S.BID, opens=True),
    Transition(S.A, A.CLOSE, S.CLOSED),
    Transition(S.A, A.FAIL_SWITCH, S.FAILED),
    Transition(S.B, A.MODEL_A, S.A, opens=True),
    Transition(S.B, A.CLOSE, S.CLOSED),
    Transition(S.BID, A.MODEL_A, S.A, opens=True),
    Transition(S.BID, A.BID, S.BID, opens=True),
    Transition(S.BID, A.CLOSE, S.CLOSED),
    Transition(S.CLOSED, A.MODEL_A, S.A, opens=True),
    Transition(S.CLOSED, A.CLOSE, S.CLOSED),
    Transition(S.FAILED, A.CLOSE, S.CLOSED),
    Transition(S.FAILED, A.PING, S.CLOSED),
    Transition(S.FAILED, A.MODEL_B, S.B, opens=True),
)
TWO_KEYS = (
    Transition(S.NONE, A.MODEL_A, S.A, opens=True, other=S.A),
    Transition(S.A, A.MODEL_A, S.A, other=S.A),
    Transition(S.A, A.MODEL_B, S.B, opens=True, other=S.B),
    Transition(S.A, A.CLOSE, S.CLOSED, other=S.A),
)
TRANSITIONS = ONE_KEY + TWO_KEYS


@dataclass
class Coverage:
    """The transitions a run tried (in this process), the longest sequence it sent, and why the rest were not."""

    tried: set[str] = field(default_factory=set)
    longest: int = 0  # requests in the longest sequence (one state-machine run) sent
    starved: set[str] = field(default_factory=set)  # transitions wanted while the session cap left nothing to open

    def try_(self, transitions: Iterable[Transition]) -> None:
        self.tried.update(transition.name for transition in transitions)

    def untried(self, transitions: Iterable[Transition]) -> list[Transition]:
        return [transition for transition in transitions if transition.name not in self.tried]

    def report(self, offers: frozenset[str], cap: int | None) -> dict[str, object]:
        """JSON-ready: every transition's name with None (tried) or the reason it was not."""
        reasons: dict[str, str | None] = {}
        for transition in TRANSITIONS:
            missing = sorted(transition.needs - offers)
            if transition.name in self.tried:
                reasons[transition.name] = None
            elif missing:
                reasons[transition.name] = f"the target offers no {' and no '.join(missing)}"
            elif cap is not None and self.starved:
                reasons[transition.name] = (
                    f"the session cap ({cap}) left no session {'for' if transition.opens else 'to reach'} it"
                )
            else:
                reasons[transition.name] = "not reached in the state machine's runs"
        return {"transitions": reasons, "longest": self.longest}


def merge(reports: Iterable[dict[str, object]]) -> tuple[dict[str, str | None], int]:
    """Several processes' transition reports as one (tried anywhere = tried), and the longest sequence."""
    merged: dict[str, str | None] = {}
    longest = 0
    for report in reports:
        transitions = report.get("transitions")
        if not isinstance(transitions, dict):
            continue
        for name, reason in transitions.items():
            merged[name] = None if reason is None or merged.get(name, "") is None else str(reason)
        longest = max(longest, int(str(report.get("longest", 0))))
    return merged, longest
