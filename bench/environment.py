"""What the figures were measured on: cores, CPU, versions, the commit, and the Prism install."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
from pathlib import Path

from bench.servers import BENCH, PRISM, ROOT

LOCKFILE = BENCH / "package-lock.json"


def ensure_prism() -> None:
    """Install the pinned Prism into bench/node_modules (`npm ci`) when it is missing or older than the lockfile."""
    if PRISM.exists() and PRISM.stat().st_mtime >= LOCKFILE.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("bench: npm is missing; Node.js and npm are needed for the Prism baseline")
    print("bench: installing the pinned Prism (npm ci --prefix bench)", flush=True)
    subprocess.run([npm, "ci", "--prefix", str(BENCH), "--no-audit", "--no-fund", "--loglevel=error"], check=True)
    PRISM.touch()


def _run(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return "missing"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def uvicorn_stack() -> str:
    """The loop and HTTP parser uvicorn's `auto` picks here (what the mock and the bare server run on)."""
    loop = f"uvloop {_version('uvloop')}" if importlib.util.find_spec("uvloop") else "asyncio"
    http = f"httptools {_version('httptools')}" if importlib.util.find_spec("httptools") else "h11"
    return f"uvicorn {_version('uvicorn')} (loop {loop}, http {http})"


def describe(wrk: str) -> dict[str, str]:
    commit = _run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "mockserver", "openapi", "bench"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cores": f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), {_cpu_model()}",
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "stack": (
            f"{uvicorn_stack()}, starlette {_version('starlette')}, pydantic {_version('pydantic')}, "
            f"jsonschema {_version('jsonschema')}"
        ),
        "prism": f"@stoplight/prism-cli {_run(str(PRISM), '--version')} on Node {_run('node', '--version')}",
        "wrk": _run(wrk, "--version").split(" Copyright")[0],
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }
