"""`make mutants`: run the contract suite against every broken gateway of the gallery, print the table.

    python -m tests.gallery.mutants            # the whole gallery, two at a time
    python -m tests.gallery.mutants --one NAME # one variant (what each worker process runs)

Each variant is served on a free loopback port in its own process, and the suite runs against it
(`--base-url`) with the mock's admin API available, so time and faults are under its control.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[2] / "contracts"
QUICK = ("--examples", "10", "--stateful-runs", "15", "--rate-limit", "0", "--max-sessions", "0", "-q")


@dataclass(frozen=True)
class Result:
    name: str
    rule: str
    caught: bool
    by: str  # the first failing test
    named: str  # the summary's line for the variant's rule, when it is one of R1-R8
    seconds: float


def run_one(name: str) -> Result:
    """Serve one variant and run the whole suite against it, in this process."""
    from contracts.inprocess import LiveServer
    from contracts.settings import MOCK_KEYS
    from mockserver.config import Config
    from mockserver.web.app import create_app
    from tests.gallery.variants import VARIANTS

    variant, started = VARIANTS[name], time.monotonic()
    app = variant.apply(create_app(Config(keys=MOCK_KEYS, admin=True, seed=1)))
    with LiveServer(app) as server, tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "junit.xml"
        keys = [part for key in MOCK_KEYS for part in ("--api-key", key)]
        # The mock imported anyio already, so its pytest plugin cannot be assertion-rewritten: harmless.
        options = [
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
            "--base-url",
            server.url,
            *keys,
            *QUICK,
        ]
        code = pytest.main([str(SUITE), *options, f"--junitxml={junit}"])
        failed = _failures(junit)
    plugin = sys.modules["contracts.conftest"]
    named = plugin.SUMMARY.rule_line(variant.rule) if variant.rule.startswith("R") else ""
    return Result(
        name, variant.rule, code == 1 and bool(failed), failed[0] if failed else "-", named, time.monotonic() - started
    )


def _failures(junit: Path) -> list[str]:
    cases = ET.parse(junit).getroot().iter("testcase")
    return [
        case.get("name", "?") for case in cases if case.find("failure") is not None or case.find("error") is not None
    ]


def run_all(names: list[str], workers: int = 2) -> list[Result]:
    """Each variant in a process of its own (the suite is a pytest run), `workers` at a time."""

    def one(name: str) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "tests.gallery.mutants", "--one", name], capture_output=True, text=True, timeout=600
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if not lines:
            return Result(name, "?", False, f"runner failed: {done.stderr[-300:]}", "", 0.0)
        return Result(**json.loads(lines[-1]))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, names))


def names_its_rule(result: Result) -> bool:
    """A session-rule variant must be reported under its own rule in the run's summary."""
    return not result.rule.startswith("R") or result.named.startswith(f"FAILED   {result.rule} broken")


def table(results: list[Result]) -> str:
    header = f"{'variant':30} {'rule':8} {'caught':7} {'rule named':10} {'by (first failing test)':64} {'seconds':>7}"
    rows = [header]
    for r in results:
        named = ("yes" if names_its_rule(r) else "NO") if r.rule.startswith("R") else "-"
        rows.append(
            f"{r.name:30} {r.rule:8} {'yes' if r.caught else 'NO':7} {named:10} {r.by[:64]:64} {r.seconds:7.1f}"
        )
    caught = sum(r.caught for r in results)
    rows.append(f"catch rate: {caught}/{len(results)} ({100 * caught / max(len(results), 1):.0f}%)")
    return "\n".join(rows)


def main() -> int:
    from tests.gallery.variants import VARIANTS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", help="run one variant and print its result as JSON")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asdict(run_one(args.one))))  # the worker's answer to its parent
        return 0
    results = run_all(sorted(VARIANTS), args.workers)
    print(table(results))
    return 0 if all(result.caught and names_its_rule(result) for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
