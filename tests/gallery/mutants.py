"""`make mutants`: the contract suite against every broken gateway of the gallery, at the settings users run.

    python -m tests.gallery.mutants                          # every configuration, every variant
    python -m tests.gallery.mutants --configuration default  # one configuration (repeatable)
    python -m tests.gallery.mutants --variant racy-creates   # some variants (repeatable)

Every variant is served over HTTP by a process of its own (`tests/gallery/serve.py`: the real mock with
its admin API, one small override), and the suite runs against it as users run it, `python -m contracts`
in another process, once per configuration:

- quick:   limits off (no session cap, no rate limit), two keys, fewer generated examples;
- default: the defaults against a URL (cap 20, 20 requests/s, default generation) with two keys and one bid id
           (`--bid-id`, a bid the served mock accepts), as the README's first run against a gateway;
- ci:      the example CI job (`examples/contract-staging.yml`): its MORPHEUS_* settings (cap 10,
           10 requests/s), two keys in MORPHEUS_API_KEYS, no bid id (a variant only bids show is n/a).

A broken variant's run stops once it is caught: at the first failing test that covers its rule (a
session-rule variant, so the summary names the rule) or at the first failing test (any other). A faithful
variant (a gateway that keeps the contract its own way) runs to the end and must pass. A race variant
(R8: only creates that meet within its window show it) that a run missed is run again, up to RACE_RUNS
runs; the table's last column says how many it took.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from contracts.api import RULES
from contracts.settings import ENV, MOCK_KEYS
from tests.gallery.stopper import STOP_ON
from tests.gallery.variants import VARIANTS, Variant

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_JOB = ROOT / "examples" / "contract-staging.yml"
QUICK = ("--examples", "10", "--stateful-runs", "15", "--rate-limit", "0", "--max-sessions", "0")
# The example job's own values stand in for these: the served variant's URL and the mock's keys.
TARGET_ENV = (ENV["base_url"], ENV["api_keys"])
_ENV_LINE = re.compile(r"^\s+(MORPHEUS_[A-Z_]+):\s*\"?([^\"#]*?)\"?\s*(?:#.*)?$")
RUN_TIMEOUT = 600
BID = "0x" + "bd" * 32  # the default configuration's --bid-id: the served mock (no bid table) accepts any bid
# One burst of two creates (all the example CI job's cap leaves R8) caught a 3 ms race 97 times in 100 with
# two busy loops beside it on two cores, 92 in 100 with three: three runs miss it about once in 2,000.
RACE_RUNS = 3
# Sessions the chat scenarios open against a faithful gateway (contracts/test_chat_rules.py): a CI job that
# turns chat on raises its session cap by this much.
CHAT_SESSIONS = 4
NO_REPORT = "no report:"
# Left out of each run's environment: the user's own target settings, and a switch users rarely set that
# makes every run rewrite and compile the suite's and Schemathesis' modules again (about 6 s CPU a run).
USER_ONLY = frozenset({*ENV.values(), "PYTHONDONTWRITEBYTECODE"})


def example_job_env(path: Path = EXAMPLE_JOB) -> dict[str, str]:
    """The MORPHEUS_* settings the example CI job sets (its target and keys excluded)."""
    found = (_ENV_LINE.match(line) for line in path.read_text().splitlines())
    return {match[1]: match[2] for match in found if match and match[1] not in TARGET_ENV}


@dataclass(frozen=True)
class Configuration:
    """How the suite is started against a served variant: its keys, options and environment."""

    name: str
    says: str
    keys: int
    options: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    through_env: bool = False  # target and keys in MORPHEUS_BASE_URL / MORPHEUS_API_KEYS, as the CI job does
    chat: bool = True  # whether users check chat at these settings (against a URL it costs tokens: opt-in)

    @property
    def bids(self) -> bool:
        """Whether the suite is given a bid id here (no bid id: it opens no bid session, so no bid rule shows)."""
        return "--bid-id" in self.options or bool(self.env.get(ENV["bid_ids"]))

    def command(self, url: str, *, chat: bool = False) -> tuple[list[str], dict[str, str]]:
        """The suite's arguments and environment; `chat`: as users run it to check chat (`--allow-chat`, and
        a session cap raised by what the chat scenarios open, where the configuration sets one)."""
        keys = MOCK_KEYS[: self.keys]
        env = {**self.env, **(self.chat_env() if chat else {})}
        if self.through_env:
            return [*self.options], {**env, ENV["base_url"]: url, ENV["api_keys"]: " ".join(keys)}
        options = [*self.options, *(["--allow-chat"] if chat else [])]
        return ["--base-url", url, *(part for key in keys for part in ("--api-key", key)), *options], env

    def chat_env(self) -> dict[str, str]:
        if not self.through_env:
            return {}
        cap = self.env.get(ENV["max_sessions"])
        raised = {ENV["max_sessions"]: str(int(cap) + CHAT_SESSIONS)} if cap else {}
        return {ENV["allow_chat"]: "1", **raised}


def configurations() -> dict[str, Configuration]:
    example = example_job_env()
    listed = (
        Configuration("quick", "limits off, two keys, 10 examples, 15 state-machine runs", 2, QUICK),
        Configuration(
            "default",
            "the defaults against a URL: cap 20, 20 requests/s, two keys, one --bid-id, no chat",
            2,
            ("--bid-id", BID),
            chat=False,
        ),
        Configuration(
            "ci", "the example CI job: " + ", ".join(f"{k}={v}" for k, v in example.items()), 2, (), example, True
        ),
    )
    return {configuration.name: configuration for configuration in listed}


@dataclass(frozen=True)
class Result:
    configuration: str
    name: str
    rule: str
    # "caught", "passes" (a faithful variant), "n/a" (the configuration cannot see it) or "missed" (a known gap
    # of the suite at this configuration: the variant's `missed_at`)
    expected: str
    code: int  # the suite's exit code (-1: not run)
    by: str  # the first failing test
    named: str  # the summary's line for the variant's rule
    seconds: float
    runs: int = 1  # suite runs it took (a race the suite missed is run again, up to RACE_RUNS)

    @property
    def outcome(self) -> str:
        if self.expected == "n/a":
            return "n/a"
        if self.by.startswith(NO_REPORT):
            return "crashed"
        if self.code == 1 and not self.by.startswith(("-", "no test failed")):
            return "caught"
        return "passed" if self.code == 0 else f"exit {self.code}"

    @property
    def proven(self) -> bool:
        """Caught (under its own rule, for a session rule) or, for a faithful variant, passed with its rule checked."""
        if self.expected in ("n/a", "missed"):
            return True
        if self.expected == "passes":
            return self.outcome == "passed" and self.named.startswith("passed")
        return self.outcome == "caught" and names_its_rule(self)


def names_its_rule(result: Result) -> bool:
    """A session-rule variant must be reported under its own rule in the run's summary."""
    return not is_rule(result.rule) or result.named.startswith("FAILED")


def is_rule(rule: str) -> bool:
    return rule in RULES


def expectation(variant: Variant, configuration: Configuration) -> str:
    if (
        configuration.keys < variant.keys_needed
        or (variant.chat and not configuration.chat)
        or (variant.bids and not configuration.bids)
    ):
        return "n/a"
    if configuration.name in variant.missed_at:
        return "missed"
    return "passes" if variant.faithful else "caught"


@dataclass(frozen=True)
class Job:
    configuration: Configuration
    variant: Variant

    @property
    def expected(self) -> str:
        return expectation(self.variant, self.configuration)

    @property
    def stop_on(self) -> str:
        """Where the run may stop: never (faithful), at its rule's first failure, or at any failure."""
        if self.variant.faithful:
            return ""
        return self.variant.rule if is_rule(self.variant.rule) else "any"


def run_job(job: Job, url: str) -> Result:
    """Run the suite against `url` (the served variant) in a process of its own, as users run it."""
    arguments, extra = job.configuration.command(url, chat=job.variant.chat)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "junit.xml"
        env = {name: value for name, value in os.environ.items() if name not in USER_ONLY}
        env.update(extra, **{STOP_ON: job.stop_on})
        command = [sys.executable, "-m", "contracts", "-p", "tests.gallery.stopper", "-q", f"--junitxml={junit}"]
        done = subprocess.run(
            [*command, *arguments], capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env, cwd=ROOT
        )
        failed = _failures(junit) if junit.exists() else [f"{NO_REPORT} {_last_line(done.stderr)}"]
    return Result(
        job.configuration.name,
        job.variant.name,
        job.variant.rule,
        job.expected,
        done.returncode,
        failed[0] if failed else _no_failure(done.returncode, done.stdout),
        rule_line(done.stdout, job.variant.rule),
        time.monotonic() - started,
    )


def _no_failure(code: int, output: str) -> str:
    """'-' for a run that passed; for one that failed with no failing test, the rules its summary left unchecked."""
    if code == 0:
        return "-"
    unchecked = [rule for rule in RULES if rule_line(output, rule).startswith("NOT CHECKED")]
    return f"no test failed; NOT CHECKED: {', '.join(unchecked) or '?'}"


def _last_line(text: str) -> str:
    """The last line of a crashed run's output: the error it died of."""
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else "no output"


def _failures(junit: Path) -> list[str]:
    cases = ET.parse(junit).getroot().iter("testcase")
    return [
        case.get("name", "?") for case in cases if case.find("failure") is not None or case.find("error") is not None
    ]


def rule_line(output: str, rule: str) -> str:
    """What the run's summary says about `rule` ('' when the rule is not a session rule or not listed)."""
    if not is_rule(rule):
        return ""
    found = re.findall(rf"^\s+{rule}\s+(\S.*)$", output, re.MULTILINE)
    return found[-1].strip() if found else ""  # the summary comes last


@contextmanager
def served(names: Sequence[str]) -> Iterator[list[str]]:
    """The named variants served by one process of their own (a fresh mock each); their URLs in order."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.gallery.serve", *names],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    stdin, stdout = server.stdin, server.stdout
    if stdin is None or stdout is None:  # pragma: no cover - Popen with PIPE always has them
        raise RuntimeError("the gallery server has no pipes")
    try:
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the gallery server did not start (exit {server.wait()})")
        yield [str(url) for url in json.loads(line)]
    finally:
        stdin.close()
        server.wait(timeout=30)
        stdout.close()


def run_variant(job: Job, url: str) -> Result:
    """One suite run against the variant (`run_job`); for a race, more when a run missed it. A race shows
    only when the burst's requests meet within its window, which a busy machine can stretch past it: a
    run that missed it (the suite passed) is followed by another, up to RACE_RUNS."""
    result = run_job(job, url)
    while job.variant.race and result.expected == "caught" and result.outcome == "passed" and result.runs < RACE_RUNS:
        again = run_job(job, url)
        result = replace(again, runs=result.runs + 1, seconds=result.seconds + again.seconds)
    return result


def run(jobs: Sequence[Job], workers: int = 3) -> list[Result]:
    """Every job, `workers` suite runs at a time, against variants served by a separate process."""
    runnable = [job for job in jobs if job.expected != "n/a"]
    skipped = {
        id(job): Result(job.configuration.name, job.variant.name, job.variant.rule, "n/a", -1, "-", "", 0.0)
        for job in jobs
        if job.expected == "n/a"
    }
    with served([job.variant.name for job in runnable]) as urls, ThreadPoolExecutor(max_workers=workers) as pool:
        # The longest runs (faithful variants run to the end; the CI job's rate is the lowest) start first.
        order = sorted(range(len(runnable)), key=lambda i: (not runnable[i].variant.faithful, runnable[i].stop_on))
        futures = {i: pool.submit(run_variant, runnable[i], urls[i]) for i in order}
        ran = {id(runnable[i]): future.result() for i, future in futures.items()}
    return [ran.get(id(job)) or skipped[id(job)] for job in jobs]


def jobs_for(configuration_names: Sequence[str], variant_names: Sequence[str]) -> list[Job]:
    known = configurations()
    return [Job(known[c], VARIANTS[v]) for c in configuration_names for v in variant_names]


def table(results: Sequence[Result]) -> str:
    """One block per configuration: variant, rule, expected, outcome, rule named, by which test, seconds."""
    rows: list[str] = []
    known = configurations()
    for name in dict.fromkeys(result.configuration for result in results):
        mine = [result for result in results if result.configuration == name]
        rows += ["", f"configuration {name}: {known[name].says}"]
        rows.append(
            f"  {'variant':30} {'rule':7} {'expected':8} {'outcome':8} {'rule named':10} {'by':50} {'s':>6} runs"
        )
        for r in mine:
            named = ("yes" if names_its_rule(r) else "NO") if is_rule(r.rule) and r.expected == "caught" else "-"
            mark = "" if r.proven else "   <-- NOT PROVEN"
            if r.expected == "missed" and r.outcome == "caught" and names_its_rule(r):
                mark = "   <-- caught now: drop it from missed_at"
            by, seconds = r.by[:50], f"{r.seconds:6.1f}"
            rows.append(
                f"  {r.name:30} {r.rule:7} {r.expected:8} {r.outcome:8} {named:10} {by:50} {seconds} {r.runs:4}{mark}"
            )
        broken = [r for r in mine if r.expected == "caught"]
        caught = sum(r.proven for r in broken)
        faithful = [r for r in mine if r.expected == "passes"]
        rows.append(
            f"  caught {caught}/{len(broken)} broken variants; faithful variants passed "
            f"{sum(r.proven for r in faithful)}/{len(faithful)}; not applicable: "
            f"{sum(r.expected == 'n/a' for r in mine)}; known misses: {sum(r.expected == 'missed' for r in mine)}; "
            f"{sum(r.seconds for r in mine):.0f} s of runs"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.gallery.mutants",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--configuration", action="append", choices=sorted(configurations()), default=[])
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS), default=[])
    parser.add_argument("--workers", type=int, default=3, help="suite runs at a time (default 3)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = run(
        jobs_for(args.configuration or list(configurations()), args.variant or sorted(VARIANTS)), args.workers
    )
    print(table(results))
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"wall time: {time.monotonic() - started:.0f} s with {args.workers} runs at a time; "
        f"CPU: {used.ru_utime + used.ru_stime:.0f} s (every suite run and the variants' server)"
    )
    return 0 if all(result.proven for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
