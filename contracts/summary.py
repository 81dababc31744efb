"""The end-of-run summary: each rule and each operation, passed / failed / skipped and why."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contracts.runtime import Run

RULES = tuple(f"R{n}" for n in range(1, 9))
_BROKEN = re.compile(r"\b(R[1-8]) broken: ([^\n]*)")


@dataclass
class Outcome:
    outcome: str  # passed, failed, skipped
    reason: str = ""


@dataclass
class Summary:
    covers: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    teardown_problems: list[str] = field(default_factory=list)

    def describe(self, nodeid: str, rules: tuple[str, ...], operations: tuple[str, ...]) -> None:
        self.covers[nodeid] = (rules, operations)

    def record(self, report: Any) -> None:
        if report.nodeid not in self.covers:
            return
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.outcomes[report.nodeid] = Outcome("skipped", reason.removeprefix("Skipped: "))
        elif report.failed:
            self.outcomes[report.nodeid] = Outcome("failed", _reason(str(report.longrepr)))
        elif report.when == "call" and report.nodeid not in self.outcomes:
            self.outcomes[report.nodeid] = Outcome("passed")

    def rule_line(self, rule: str) -> str:
        tests = [nodeid for nodeid, (rules, _) in self.covers.items() if rule in rules]
        results = [self.outcomes[nodeid] for nodeid in tests if nodeid in self.outcomes]
        named = [result.reason for result in results if result.outcome == "failed" and result.reason.startswith(rule)]
        if named:
            return f"FAILED   {_short(named[0])}"
        failed = [result.reason for result in results if result.outcome == "failed"]
        if failed:
            return f"UNKNOWN  a test covering it failed first: {_short(failed[0], 80)}"
        if any(result.outcome == "passed" for result in results):
            return f"passed   ({sum(r.outcome == 'passed' for r in results)} test(s))"
        skipped = [result.reason for result in results if result.outcome == "skipped"]
        return f"skipped  {skipped[0]}" if skipped else "not run"

    def operation_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for nodeid, (_, operations) in self.covers.items():
            outcome = self.outcomes.get(nodeid, Outcome("not run")).outcome
            for operation in operations:
                bucket = counts.setdefault(operation, {})
                bucket[outcome] = bucket.get(outcome, 0) + 1
        return counts

    def lines(self, run: Run, elapsed: float) -> list[str]:
        target = "the in-process mock" if run.settings.in_process else run.base_url
        keys = ", ".join(key[:9] + "…" for key in run.keys)
        lines = [
            "",
            "==================== Morpheus session-API contract ====================",
            f"target: {target}   keys: {keys}",
            f"time control (R6): {'yes (admin clock)' if run.controls_time else 'no - expiry is not checked'}"
            f"   fault control: {'yes' if run.controls_faults else 'no'}"
            f"   approve: {'sent' if run.spend_allowed else 'never sent (no --allow-spend)'}",
            "rules:",
        ]
        lines += [f"  {rule}  {self.rule_line(rule)}" for rule in RULES]
        lines.append("operations:")
        for operation, counts in sorted(self.operation_counts().items()):
            lines.append(f"  {operation}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
        ledger = run.ledger
        cap = "no cap" if ledger.cap is None else f"cap {ledger.cap}"
        held = ", ".join(f"{n} {reason}" for reason, n in ledger.held_back.items()) or "none"
        lines.append(
            f"safety: {len(ledger.opened)} sessions opened ({cap}); held back: {held}; "
            f"keys used: {len(ledger.keys_used)}"
        )
        closing = "; ".join(self.teardown_problems) or "every key's session closed"
        lines.append(f"teardown: {closing}")
        lines.append(f"requests sent: {run.client.sent}   wall time: {elapsed:.1f} s")
        return lines


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(text: str) -> str:
    broken = _BROKEN.search(text)
    if broken:
        return f"{broken.group(1)} broken: {broken.group(2)}"
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("E ")]
    return (lines[0].removeprefix("E").strip() if lines else text.strip().splitlines()[-1])[:200]
