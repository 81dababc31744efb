"""The load generator: wrk (Debian's package) with bench/mix.lua, and what one run measured."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MIX_SCRIPT = Path(__file__).with_name("mix.lua")
MARK = "BENCH_JSON "


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian when missing (the bench target runs as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("bench: wrk is missing; install it with `sudo apt-get install -y wrk`")
    print("bench: installing wrk (apt-get install -y wrk)", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    )
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is still missing after apt-get install")
    return found


@dataclass(frozen=True)
class Run:
    """One wrk run against one server at one connection count."""

    connections: int
    seconds: float
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    statuses: Mapping[int, int]
    issued: Mapping[int, int]
    wrk_cpu: float  # cores the load generator itself used on average (its own cost)
    server_cpu: float = 0.0  # cores the server used on average
    store_cpu: float | None = None  # cores the redis-server used on average (the --store cells)
    answers_the_mix: bool = True  # False for a server that answers 200 to everything by design (bare)
    frames: int = 0  # SSE chunk frames received (the chat stream cells)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds

    @property
    def unintended(self) -> int:
        """Responses whose status the mix never asks for (500s, 404s, a 200 for a 401 ...).

        Statuses are matched as counts: wrk does not tell which request a response answers, so a
        status that came back more often than it was asked for counts the surplus as errors. A
        server that does not answer the mix (bare) only errs with a status other than 200.
        """
        if not self.answers_the_mix:
            return sum(count for status, count in self.statuses.items() if status != 200)
        wrong = sum(count for status, count in self.statuses.items() if status not in self.issued)
        surplus = sum(
            max(0, count - self.issued[status]) for status, count in self.statuses.items() if status in self.issued
        )
        return wrong + surplus

    @property
    def errors(self) -> int:
        return self.socket_errors + self.unintended


def run_wrk(
    wrk: str,
    url: str,
    *,
    connections: int,
    seconds: float,
    script_args: Sequence[str],
    threads: int = 1,
    timeout_s: int = 5,
) -> Run:
    """One wrk run; its CPU time is read from this process's children usage around it."""
    command = [
        wrk,
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds
        f"--timeout={timeout_s}s",
        "-s",
        str(MIX_SCRIPT),
        url,
        "--",
        *script_args,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 3 + 600, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(lines[-1][len(MARK) :])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    errors = data["errors"]
    latency = data["latency_us"]
    return Run(
        connections=connections,
        seconds=data["duration_us"] / 1e6,
        requests=data["requests"],
        p50_ms=latency["p50"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        statuses={int(k): v for k, v in data["statuses"].items()},
        issued={int(k): v for k, v in data["issued"].items()},
        wrk_cpu=cpu / wall,
        frames=data.get("frames", 0),
    )
