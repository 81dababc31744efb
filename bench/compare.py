"""`python -m bench.compare VARIANT...`: what a change bought, as ratios measured in the same run.

A variant is a git revision of the mock (`HEAD~2`, a commit id, or `.` for the working tree),
optionally with uvicorn's loop and HTTP parser forced: `HEAD~2@asyncio,h11`. Every variant is
served side by side (`python -m mockserver` from an export of that revision, in this venv) and
driven in turn with the bench mix at one connection count, for several rounds; the table gives
each variant's median throughput and its ratio to the first variant.

With --in-process the app of each variant is called directly instead (bench.inprocess): its own
cost per request, without network, HTTP parser or load generator, which shows small changes; with
--store, --keys and --tasks as bench.inprocess takes them, and with --instructions counted under
callgrind rather than timed (the same from run to run: one round is enough).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.load import Run, ensure_wrk
from bench.run import KEYS, measure
from bench.servers import ROOT, Server, mock_server


@dataclass(frozen=True)
class Variant:
    label: str
    revision: str
    loop: str | None
    http: str | None

    @classmethod
    def parse(cls, text: str) -> Variant:
        revision, _, options = text.partition("@")
        loop, _, http = options.partition(",")
        return cls(text, revision, loop or None, http or None)


def export(revision: str, into: Path) -> Path:
    """The mock's packages as they were at `revision` (the working tree for `.`)."""
    if revision == ".":
        return ROOT
    target = into / revision.replace("/", "_").replace("~", "-").replace("^", "-")
    if target.exists():
        return target
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "mockserver", "openapi"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def server_for(variant: Variant, source: Path) -> Server:
    """`python -m mockserver` run from `source`, whose packages come first on sys.path."""
    name = f"mock-{variant.label}".replace("/", "_")
    if not (variant.loop or variant.http):
        return mock_server(KEYS, cwd=source, name=name)
    # Force uvicorn's options without touching the exported code: wrap uvicorn.Config, then run the CLI.
    forced = {"loop": variant.loop or "auto", "http": variant.http or "auto"}
    code = (
        "import runpy, sys, uvicorn\n"
        "original = uvicorn.Config\n"
        f"uvicorn.Config = lambda *a, **k: original(*a, **{{**k, **{forced!r}}})\n"
        "sys.argv = ['mockserver', *sys.argv[1:]]\n"
        "runpy.run_module('mockserver', run_name='__main__')\n"
    )
    return mock_server(KEYS, launch=("-c", code), cwd=source, name=name)


_RUN_IN_PROCESS = "import sys; from bench.inprocess import main; sys.exit(main(sys.argv[1:]))"


def in_process(source: Path, cycles: int, options: Sequence[str] = ()) -> float:
    """Microseconds of CPU (or, with `--instructions` among `options`, instructions) per request of the app
    exported at `source` (its packages come first on sys.path)."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN_IN_PROCESS, "--rounds", "1", "--cycles", str(cycles), *options],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.rsplit(" ", 1)[1])  # INPROCESS <us> or INSTRUCTIONS <count>


def compare_in_process(variants: Sequence[Variant], rounds: int, cycles: int, options: Sequence[str] = ()) -> str:
    costs: dict[str, list[float]] = {variant.label: [] for variant in variants}
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch:
        sources = [export(variant.revision, Path(scratch)) for variant in variants]
        for _ in range(rounds):
            for variant, source in zip(variants, sources, strict=True):
                costs[variant.label].append(in_process(source, cycles, options))
    base = statistics.median(costs[variants[0].label])
    unit = "instructions" if "--instructions" in options else "us"
    how = " ".join(option for option in options if option != "--instructions")
    lines = [
        f"In process (bench.inprocess{' ' + how if how else ''}), {rounds} rounds of {cycles} passes over the mix,"
        " variants interleaved:",
        "",
        f"| variant | {unit} per request (median) | each round | speed vs first |",
        "|---|---:|---|---:|",
    ]
    digits = 0 if unit == "instructions" else 1
    for variant in variants:
        cost = statistics.median(costs[variant.label])
        rounds_text = ", ".join(f"{value:,.{digits}f}" for value in costs[variant.label])
        lines.append(f"| `{variant.label}` | {cost:,.{digits}f} | {rounds_text} | {base / cost:.2f}x |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("variants", nargs="+", help="REVISION[@LOOP,HTTP]; '.' is the working tree")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-process", action="store_true", help="call each variant's app directly (no network)")
    parser.add_argument("--cycles", type=int, default=2000, help="passes over the mix per in-process round")
    parser.add_argument("--store", action="store_true", help="in process, on a throwaway redis-server")
    parser.add_argument("--keys", type=int, default=0, help="in process, the mix over this many generated keys")
    parser.add_argument("--tasks", type=int, default=1, help="in process, requests under way at once")
    parser.add_argument("--instructions", action="store_true", help="in process, count instructions (callgrind)")
    args = parser.parse_args(argv)
    variants = [Variant.parse(text) for text in args.variants]
    if args.in_process:
        options = [*(["--store"] if args.store else []), "--keys", str(args.keys), "--tasks", str(args.tasks)]
        options += ["--instructions"] if args.instructions else []
        print(compare_in_process(variants, args.rounds, args.cycles, options))
        return 0
    wrk = ensure_wrk()
    runs: dict[str, list[Run]] = {variant.label: [] for variant in variants}
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch:
        servers = [server_for(variant, export(variant.revision, Path(scratch))) for variant in variants]
        try:
            for server in servers:
                server.start()
                measure(server, wrk, args.connections, 2, ("mix", *KEYS))  # warm-up
            for _ in range(args.rounds):
                for variant, server in zip(variants, servers, strict=True):
                    runs[variant.label].append(measure(server, wrk, args.connections, args.seconds, ("mix", *KEYS)))
        finally:
            for server in servers:
                server.stop()
    print(table(variants, runs, args))
    return 0


def table(variants: Sequence[Variant], runs: dict[str, list[Run]], args: argparse.Namespace) -> str:
    base = statistics.median(run.rps for run in runs[variants[0].label])
    lines = [
        f"{args.rounds} rounds of {args.seconds:g} s at {args.connections} connections, variants interleaved:",
        "",
        "| variant | req/s (median) | each round | p99 ms (median) | errors | vs first |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for variant in variants:
        measured = runs[variant.label]
        rps = statistics.median(run.rps for run in measured)
        rounds = ", ".join(f"{run.rps:,.0f}" for run in measured)
        p99 = statistics.median(run.p99_ms for run in measured)
        errors = sum(run.errors for run in measured)
        lines.append(f"| `{variant.label}` | {rps:,.0f} | {rounds} | {p99:.2f} | {errors} | {rps / base:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    if shutil.which("git") is None:
        raise SystemExit("bench.compare needs git")
    sys.exit(main())
