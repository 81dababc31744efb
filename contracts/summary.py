"""The end-of-run summary: each rule and each operation, passed / failed / skipped and why.

A rule counts as checked only by a test that passed AND recorded that it exercised the rule (the
`checked` user property, see `contracts/conftest.py:check`); a rule with no such test reads
`NOT CHECKED (reason)`, and `unchecked()` names the ones the target should have allowed. With
pytest-xdist the controller builds it from the workers' reports (test outcomes carry the rules and
operations they cover as user properties; each worker sends what its run did to the target).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from contracts.api import CHAT_RULES, RULES
from contracts.chat_budget import NOT_ALLOWED
from contracts.settings import Settings
from contracts.transitions import merge

CLOSED_ALL = "every key's session closed"
_BROKEN = re.compile(rf"\b({'|'.join(map(re.escape, RULES))}) broken: ([^\n]*)")  # the spec's rule ids
USER_SKIPPED = "skipped by --skip-rule"


@dataclass
class Outcome:
    outcome: str  # passed, failed, skipped
    reason: str = ""
    checked: frozenset[str] = frozenset()


@dataclass
class RuleTally:
    """What the run's tests did for one rule."""

    checked: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_exercised: int = 0  # tests that passed without exercising the rule
    selected: int = 0

    def skip_text(self) -> str:
        return f"{len(self.skipped)} skipped" if self.skipped else ""


@dataclass
class Summary:
    settings: Settings | None = None
    covers: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    workers: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def describe(self, nodeid: str, rules: tuple[str, ...], operations: tuple[str, ...]) -> None:
        self.covers[nodeid] = (rules, operations)

    def add_worker(self, report: dict[str, Any]) -> None:
        self.workers.append(report)

    def record(self, report: Any) -> None:
        properties = list(getattr(report, "user_properties", ()))
        if report.nodeid not in self.covers:
            for name, value in properties:
                if name == "contract":
                    data = json.loads(value)
                    self.describe(report.nodeid, tuple(data["rules"]), tuple(data["operations"]))
        if report.nodeid not in self.covers:
            return
        checked = frozenset(value for name, value in properties if name == "checked")
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.outcomes[report.nodeid] = Outcome("skipped", reason.removeprefix("Skipped: "))
        elif report.failed:
            self.outcomes[report.nodeid] = Outcome("failed", _reason(str(report.longrepr)), checked)
        elif report.when == "call" and report.nodeid not in self.outcomes:
            self.outcomes[report.nodeid] = Outcome("passed", checked=checked)

    def tally(self, rule: str) -> RuleTally:
        tally = RuleTally()
        for nodeid, (rules, _) in self.covers.items():
            result = self.outcomes.get(nodeid)
            if rule not in rules or result is None:
                continue
            tally.selected += 1
            if result.outcome == "failed" and rule in result.checked and not result.reason.startswith(f"{rule} "):
                tally.checked += 1  # it checked this rule, then failed on another one
            elif result.outcome == "failed":
                tally.failed.append(result.reason)
            elif result.outcome == "skipped":
                tally.skipped.append(result.reason)
            elif rule in result.checked:
                tally.checked += 1
            else:
                tally.not_exercised += 1
        return tally

    def rule_line(self, rule: str) -> str:
        tally = self.tally(rule)
        named = [reason for reason in tally.failed if reason.startswith(f"{rule} ")]
        counts = ", ".join(
            part
            for part in (
                f"{tally.checked} checked" if tally.checked else "",
                f"{len(tally.failed)} failed" if tally.failed else "",
                tally.skip_text(),
            )
            if part
        )
        if named:
            return f"FAILED   {_short(named[0])}   [{counts}]"
        if tally.checked:  # failures that name another rule (or none) do not undo a passed check of this one
            return f"passed   ({counts})"
        unnamed = [reason for reason in tally.failed if not _BROKEN.match(reason)]
        if unnamed:
            return f"UNKNOWN  a test covering it failed first: {_short(unnamed[0], 80)}   [{counts}]"
        return f"NOT CHECKED ({self._why_not(rule, tally)})"

    def _why_not(self, rule: str, tally: RuleTally) -> str:
        if self.settings is not None and rule in self.settings.skip_rules:
            return USER_SKIPPED
        if rule in CHAT_RULES and self.workers and not self.workers[0].get("chat_allowed"):
            return NOT_ALLOWED
        if tally.skipped:
            return "; ".join(sorted(set(tally.skipped)))
        if tally.not_exercised:
            return f"{tally.not_exercised} test(s) ran but none exercised it"
        return "no test of it was selected"

    def required(self) -> tuple[str, ...]:
        """The rules this target should let the suite check (R1-R5 and R8 always; R7 with two keys;
        R3 with bid ids; R6 where time is controllable; the chat rules when chat may be sent), less those
        the user skipped."""
        if not self.workers:
            return ()
        first = self.workers[0]
        allowed = {"R1", "R2", "R4", "R5", "R8"}
        allowed |= {"R7"} if len(first["keys"]) >= 2 else set()
        allowed |= {"R3"} if first["bids"] else set()
        allowed |= {"R6"} if first["controls_time"] else set()
        allowed |= set(CHAT_RULES) if first.get("chat_allowed") else set()
        skipped = set(self.settings.skip_rules) if self.settings else set()
        return tuple(rule for rule in RULES if rule in allowed - skipped)

    def unchecked(self) -> list[str]:
        """Required rules that no passing test exercised although a test of theirs was selected and
        none of them failed (a failure already fails the run), each with the reason."""
        missing = []
        for rule in self.required():
            tally = self.tally(rule)
            if tally.selected and not tally.checked and not tally.failed:
                missing.append(f"{rule} ({self._why_not(rule, tally)})")
        return missing

    def operation_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for nodeid, (_, operations) in self.covers.items():
            outcome = self.outcomes.get(nodeid, Outcome("not run")).outcome
            for operation in operations:
                bucket = counts.setdefault(operation, {})
                bucket[outcome] = bucket.get(outcome, 0) + 1
        return counts

    def lines(self, elapsed: float) -> list[str]:
        first = self.workers[0]
        workers = f"   workers: {len(self.workers)}" if len(self.workers) > 1 else ""
        keys = ", ".join(dict.fromkeys(key for worker in self.workers for key in worker["keys"]))
        lines = [
            "",
            "==================== Morpheus session-API contract ====================",
            f"target: {first['target']}   keys: {keys}{workers}",
            f"time control (R6): {first['time']}   fault control: {'yes' if first['controls_faults'] else 'no'}"
            f"   approve: {'sent' if first['spend_allowed'] else 'never sent (no --allow-spend)'}",
            "rules:",
        ]
        lines += [f"  {rule}  {self.rule_line(rule)}" for rule in RULES]
        missing = self.unchecked()
        if missing:
            lines.append(
                f"FAILED: not checked although the target allows it: {', '.join(missing)}. "
                "Give the run what it needs, or accept it with --skip-rule RULE."
            )
        lines.append("operations:")
        for operation, counts in sorted(self.operation_counts().items()):
            lines.append(f"  {operation}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
        return lines + self._safety_lines(elapsed)

    def _safety_lines(self, elapsed: float) -> list[str]:
        opened = sum(worker["opened"] for worker in self.workers)
        caps = [worker["cap"] for worker in self.workers]
        cap = "no cap" if None in caps else f"cap {sum(caps)}" + (f", {caps[0]} per worker" if len(caps) > 1 else "")
        held: dict[str, int] = {}
        for worker in self.workers:
            for reason, count in worker["held_back"].items():
                held[reason] = held.get(reason, 0) + count
        problems = [problem for worker in self.workers for problem in worker["teardown_problems"]]
        return [
            f"safety: {opened} sessions opened ({cap}); "
            f"held back: {', '.join(f'{n} {reason}' for reason, n in held.items()) or 'none'}; "
            f"keys used: {sum(worker['keys_used'] for worker in self.workers)}",
            self._chat_line(),
            f"teardown: {'; '.join(problems) or CLOSED_ALL}",
            f"generated: {sum(worker['cases'] for worker in self.workers)} Schemathesis cases, "
            f"{sum(worker['steps'] for worker in self.workers)} state-machine steps",
            *self._transition_lines(),
            f"requests sent: {sum(worker['requests'] for worker in self.workers)}   wall time: {elapsed:.1f} s",
        ]

    def _transition_lines(self) -> list[str]:
        """The state machine's transitions tried (contracts/transitions.py) and the longest sequence sent."""
        reasons, longest = merge(self.workers)
        if not reasons:
            return []
        tried = sum(reason is None for reason in reasons.values())
        lines = [f"transitions: {tried}/{len(reasons)} tried; longest sequence sent: {longest} requests"]
        return lines + [f"  NOT TRIED {name}: {reason}" for name, reason in reasons.items() if reason is not None]

    def _chat_line(self) -> str:
        if not self.workers[0].get("chat_allowed"):
            return f"chat: none sent ({NOT_ALLOWED})"
        caps: list[int | None] = [worker.get("chat_cap") for worker in self.workers]
        limit = "no cap" if None in caps else f"cap {sum(value or 0 for value in caps)}"
        return f"chat: {sum(worker.get('chats', 0) for worker in self.workers)} chat/embeddings requests ({limit})"

    def as_json(self, elapsed: float) -> dict[str, Any]:
        """The summary for programs (`--summary-json FILE`): each rule's line, what is unchecked, the text."""
        return {
            "rules": {rule: self.rule_line(rule) for rule in RULES},
            "unchecked": self.unchecked(),
            "failed_run": self.failed_run(),
            "lines": self.lines(elapsed),
        }

    def failed_run(self) -> bool:
        """The run fails beyond its tests: a required rule unchecked, or a teardown answer that was wrong."""
        return bool(self.unchecked()) or any(worker["teardown_problems"] for worker in self.workers)


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(text: str) -> str:
    broken = _BROKEN.search(text)
    if broken:
        return f"{broken.group(1)} broken: {broken.group(2)}"
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("E ")]
    return (lines[0].removeprefix("E").strip() if lines else text.strip().splitlines()[-1])[:200]
