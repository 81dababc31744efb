"""The end-of-run summary: each rule and each operation, passed / failed / skipped and why.

With pytest-xdist the controller builds it from the workers' reports (test outcomes carry the rules and
operations they cover as user properties; each worker sends what its run did to the target).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from contracts.settings import Settings

RULES = tuple(f"R{n}" for n in range(1, 9))
CLOSED_ALL = "every key's session closed"
_BROKEN = re.compile(r"\b(R[1-8]) broken: ([^\n]*)")


@dataclass
class Outcome:
    outcome: str  # passed, failed, skipped
    reason: str = ""


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
        if report.nodeid not in self.covers:
            for name, value in getattr(report, "user_properties", ()):
                if name == "contract":
                    data = json.loads(value)
                    self.describe(report.nodeid, tuple(data["rules"]), tuple(data["operations"]))
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

    def lines(self, elapsed: float) -> list[str]:
        first = self.workers[0]
        workers = f"   workers: {len(self.workers)}" if len(self.workers) > 1 else ""
        keys = ", ".join(key for worker in self.workers for key in worker["keys"])
        yes = "yes (admin clock)" if first["controls_time"] else "no - expiry is not checked"
        lines = [
            "",
            "==================== Morpheus session-API contract ====================",
            f"target: {first['target']}   keys: {keys}{workers}",
            f"time control (R6): {yes}   fault control: {'yes' if first['controls_faults'] else 'no'}"
            f"   approve: {'sent' if first['spend_allowed'] else 'never sent (no --allow-spend)'}",
            "rules:",
        ]
        lines += [f"  {rule}  {self.rule_line(rule)}" for rule in RULES]
        lines.append("operations:")
        for operation, counts in sorted(self.operation_counts().items()):
            lines.append(f"  {operation}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
        return lines + self._safety_lines(elapsed)

    def _safety_lines(self, elapsed: float) -> list[str]:
        opened = sum(worker["opened"] for worker in self.workers)
        cap = self.workers[0]["cap"]
        held: dict[str, int] = {}
        for worker in self.workers:
            for reason, count in worker["held_back"].items():
                held[reason] = held.get(reason, 0) + count
        problems = [problem for worker in self.workers for problem in worker["teardown_problems"]]
        return [
            f"safety: {opened} sessions opened ({'no cap' if cap is None else f'cap {cap} per worker'}); "
            f"held back: {', '.join(f'{n} {reason}' for reason, n in held.items()) or 'none'}; "
            f"keys used: {sum(worker['keys_used'] for worker in self.workers)}",
            f"teardown: {'; '.join(problems) or CLOSED_ALL}",
            f"generated: {sum(worker['cases'] for worker in self.workers)} Schemathesis cases, "
            f"{sum(worker['steps'] for worker in self.workers)} state-machine steps",
            f"requests sent: {sum(worker['requests'] for worker in self.workers)}   wall time: {elapsed:.1f} s",
        ]


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(text: str) -> str:
    broken = _BROKEN.search(text)
    if broken:
        return f"{broken.group(1)} broken: {broken.group(2)}"
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("E ")]
    return (lines[0].removeprefix("E").strip() if lines else text.strip().splitlines()[-1])[:200]
