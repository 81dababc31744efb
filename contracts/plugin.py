"""The contract run's pytest hooks, as one object registered per pytest config (no module state):
order (rule checks first), the session budget's reservations, key redaction in every report, the
per-rule summary, and the run's verdict beyond its tests (a required rule unchecked fails the run)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from contracts.api import MODEL_SESSION
from contracts.options import replay_command
from contracts.redact import redact
from contracts.runtime import Run
from contracts.safety import close_all
from contracts.summary import USER_SKIPPED, Summary

RUN = pytest.StashKey[Run]()
GENERATED_OWNER = "the generated modelsessions"  # their reservation's owner (contracts/test_conformance.py)
CHAT_SESSIONS = 4  # the sessions the chat scenarios open against a faithful gateway (they reserve none)
# The authentication refusals run first (they open no session and cost a request each, so a broken
# authentication fails the run in seconds); then the rule checks, in this order: the fixed scenarios
# (chat's, then the session routes'; short, cheap), R8, the state machine; then the refused-create probe,
# and the generated cases get the sessions left.
RULES_FIRST = (
    "test_auth.py",
    "test_chat_rules.py",  # only with chat allowed; a session only where the cap leaves one beyond the others'
    "test_rule_scenarios.py",
    "test_concurrency.py",
    "test_errors.py",
    "test_failure_paths.py",
    "test_session_rules.py",  # last: the first key's session it leaves is the one the generated creates reuse
)


def contract_marker(item: pytest.Item) -> pytest.Mark | None:
    return item.get_closest_marker("contract")


def _priority(item: pytest.Item) -> int:
    name = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    return RULES_FIRST.index(name) if name in RULES_FIRST else len(RULES_FIRST)


class ContractPlugin:
    def __init__(
        self, config: pytest.Config, summary: Summary, keys: tuple[str, ...], *, hypothesis_profile: str
    ) -> None:
        self.config = config
        self.summary = summary
        self.keys = keys
        self.hypothesis_profile = hypothesis_profile  # the one to put back when the run ends

    @property
    def run(self) -> Run | None:
        return self.config.stash.get(RUN, None)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Rule checks first; a test of rules the user skipped (--skip-rule) is skipped."""
        items.sort(key=_priority)
        skipped = set(self.summary.settings.skip_rules if self.summary.settings else ())
        for item in items:
            marker = contract_marker(item)
            rules = set(marker.kwargs.get("rules", ())) if marker is not None else set()
            if rules and rules <= skipped:
                item.add_marker(pytest.mark.skip(reason=f"{USER_SKIPPED} {' '.join(sorted(rules))}"))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """For the tests that will run (after -k / -m): reserve each one's sessions, tell the summary
        what each covers. A reservation whose `needs=` the target does not offer (bids, time, two keys,
        two models) is not made: its test skips."""
        shares: list[tuple[int, str, int]] = []
        for item in session.items:
            if item.name.startswith("test_conformance[") and not contract_marker(item):
                operation = item.name.split("[", 1)[1].rstrip("]")
                item.add_marker(pytest.mark.contract(rules=(), operations=(operation,)))
            marker = contract_marker(item)
            if marker is None:
                continue
            rules, operations = tuple(marker.kwargs.get("rules", ())), tuple(marker.kwargs.get("operations", ()))
            self.summary.describe(item.nodeid, rules, operations)
            item.user_properties.append(("contract", json.dumps({"rules": rules, "operations": operations})))
            run = self.run
            asks = marker.kwargs.get("sessions") or marker.kwargs.get("more")
            if run is None or not asks or item.get_closest_marker("skip"):
                continue
            if set(marker.kwargs.get("needs", ())) - run.offers:
                continue
            if marker.kwargs.get("share"):
                shares.append((int(marker.kwargs["share"]), item.nodeid, int(marker.kwargs["sessions"])))
            else:
                run.ledger.reserve(item.nodeid, int(marker.kwargs.get("sessions", 0)))
            if marker.kwargs.get("more"):  # a sequence's further opens: first of what the fixed ones leave
                shares.append((0, item.nodeid, int(marker.kwargs["more"])))
        if self.run is not None:
            if any(item.name.startswith(f"test_conformance[{MODEL_SESSION.label}") for item in session.items):
                shares.append((2, GENERATED_OWNER, 1))  # the session the generated modelsessions then reuse
            chats = any(item.nodeid.split("::")[0].endswith("test_chat_rules.py") for item in session.items)
            self.run.ledger.share_out(shares, keep=CHAT_SESSIONS if chats and self.run.settings.chat_allowed else 0)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Redact keys in every report before any reporter (terminal, JUnit XML) sees it; feed the summary;
        a rule check's reservation ends with it."""
        keys = self.keys + (self.run.keys if self.run else ())
        if report.failed and report.when == "call":
            args = [str(arg) for arg in self.config.invocation_params.args]
            report.sections.append(("replay", f"Replay: {replay_command(args, report.nodeid)}"))
        if isinstance(report.longrepr, tuple):
            path, line, message = report.longrepr
            report.longrepr = (path, line, redact(message, keys))
        elif report.longrepr is not None:
            report.longrepr = redact(str(report.longrepr), keys)
        report.sections = [(title, redact(text, keys)) for title, text in report.sections]
        self.summary.record(report)
        if report.when == "teardown" and self.run is not None:
            self.run.ledger.release(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        run = self.run
        if run is not None:
            problems = close_all(run.client, run.ledger, run.keys) + run.restore_clock()
            self.summary.add_worker(run.report(problems))
            workeroutput = getattr(session.config, "workeroutput", None)
            if workeroutput is not None:  # a pytest-xdist worker: hand the controller what this worker did
                workeroutput["contract"] = json.dumps(run.report(problems))
                return
        if self.summary.workers and self.summary.failed_run() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        target = self.config.option.summary_json
        if target and self.summary.workers:
            Path(target).write_text(json.dumps(self.summary.as_json(time.monotonic() - self.summary.started)))

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """The pytest-xdist controller collects each worker's report for the summary."""
        report = getattr(node, "workeroutput", {}).get("contract")
        if report:
            self.summary.add_worker(json.loads(report))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.summary.workers or hasattr(self.config, "workerinput"):
            return
        for line in self.summary.lines(time.monotonic() - self.summary.started):
            terminalreporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Stop an in-process target; a process that runs the suite more than once (pytest.main) keeps
        its own Hypothesis profile."""
        run = self.run
        if run is not None:
            run.stop()
        import hypothesis  # loaded by now (see contracts/conftest.py)

        hypothesis.settings.load_profile(self.hypothesis_profile)
        hypothesis.configuration.set_hypothesis_home_dir(None)  # back to its own default (contracts/conftest.py)
