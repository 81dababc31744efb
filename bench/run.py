"""One benchmark run: the three servers side by side, the memory soak, the contract suite's default run."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bench.load import Run, run_wrk
from bench.servers import ROOT, RedisServer, Server, bare_server, mock_server, prism_server, redis_server

# The mix's three keys (bench/mix.lua): A reuses one model, B alternates models, C opens and closes.
KEYS = tuple(f"sk-Bench{slot}." + hexdigit * 64 for slot, hexdigit in (("A", "a"), ("B", "b"), ("C", "c")))
SERVERS = ("mock", "prism", "bare", "bare-json")
STORE_WORKERS = (1, 2)  # `--store` cells: the mock with its state in Redis, 1 and 2 worker processes
IN_MEMORY = "in-memory"  # the one in-memory worker measured in turn with the `--store` cells
MANY_KEYS = 64  # the many-keys mix: the same cycle over this many generated keys in turn (issue 24)
KEYS_SUFFIX = "-keys"  # the many-keys cells: "in-memory-keys", "store-1-keys", "store-2-keys"
NOT_BUILT = "not built yet"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def generated_key(number: int) -> str:
    """The `number`-th key of mix.lua's `keys` mode: "sk-" + 6 of [A-Za-z0-9] + "." + 64 lowercase hex."""
    prefix, rest = "", number
    for _ in range(6):
        prefix, rest = _ALNUM[rest % 62] + prefix, rest // 62
    return f"sk-{prefix}." + f"{number:08x}" * 8


# The two mixes of the `--store` cells, by cell-name suffix: the mix on KEYS, and the same cycle over MANY_KEYS keys.
STORE_MIXES = {"": ("mix", *KEYS), KEYS_SUFFIX: ("keys", str(MANY_KEYS))}


@dataclass
class Results:
    cells: dict[tuple[str, int], Run] = field(default_factory=dict)
    rounds: dict[tuple[str, int], list[float]] = field(default_factory=dict)  # each round's req/s, in order
    memory: Memory | None = None
    store_memory: Memory | None = None  # the soak against a `--store` mock (1 worker)
    contract: Contract | None = None


@dataclass(frozen=True)
class Memory:
    keys: int
    requests: int
    rss_start_kib: int
    rss_warm_kib: int  # after the first pass: every key has been seen
    rss_end_kib: int
    warm_requests: int
    run: Run  # the whole soak
    store_rss_kib: tuple[int, int, int] | None = None  # the redis-server's RSS at the same three points (--store)


@dataclass(frozen=True)
class Contract:
    status: str  # "ran", "failed (exit N)" or NOT_BUILT
    seconds: float = 0.0  # wall time of `python -m contracts`, interpreter start to exit
    tests: int | None = None  # pytest items of its summary line
    requests: int | None = None  # requests it says it sent: each generated case or stateful step is one
    own_seconds: float | None = None  # the wall time it reports itself
    cases: int | None = None  # cases it generated: Schemathesis cases plus state-machine steps


def measure(
    server: Server,
    wrk: str,
    connections: int,
    seconds: float,
    script_args: Sequence[str],
    store: RedisServer | None = None,
) -> Run:
    """One wrk run against `server`, with the cores it (and the redis-server of a `--store` cell) used meanwhile."""
    cpu_before, store_before, started = server.cpu_seconds(), _cpu(store), time.monotonic()
    run = run_wrk(wrk, server.url, connections=connections, seconds=seconds, script_args=script_args)
    wall = time.monotonic() - started
    store_cpu = None if store is None else (store.cpu_seconds() - store_before) / wall
    return dataclasses.replace(run, server_cpu=(server.cpu_seconds() - cpu_before) / wall, store_cpu=store_cpu)


def _cpu(store: RedisServer | None) -> float:
    return 0.0 if store is None else store.cpu_seconds()


def load_cells(
    wrk: str, connections: Sequence[int], seconds: float, warmup: float, rounds: int = 3, log: bool = True
) -> Results:
    """Every server at every connection count, `rounds` times, servers interleaved within each round so that
    noise hits them alike; a cell is its median round (by req/s). One 6 s window on these cores can move a
    server's throughput by a third, so a single round cannot tell a 2.6x ratio from a 3x one."""
    results = Results()
    servers = {
        "mock": mock_server(KEYS),
        "prism": prism_server(),
        "bare": bare_server(),
        "bare-json": bare_server(json_work=True),
    }
    try:
        for server in servers.values():
            server.start()
        for name, server in servers.items():
            measure(server, wrk, 32, warmup, ("mix", *KEYS))  # JIT, caches and lazily built validators
            if log:
                print(f"bench: {name} on {server.url}, warmed up", flush=True)
        for count in connections:
            cells = {
                name: _cell(server, wrk, count, seconds, ("mix", *KEYS), answers_the_mix=not name.startswith("bare"))
                for name, server in servers.items()
            }
            take_turns(results, cells, count, rounds, log)
    finally:
        for server in servers.values():
            server.stop()
    return results


def _cell(
    server: Server,
    wrk: str,
    connections: int,
    seconds: float,
    script_args: Sequence[str],
    store: RedisServer | None = None,
    *,
    answers_the_mix: bool = True,
) -> Callable[[], Run]:
    """One cell's measurement, to be taken once a round."""

    def run() -> Run:
        measured = measure(server, wrk, connections, seconds, script_args, store)
        return dataclasses.replace(measured, answers_the_mix=answers_the_mix)

    return run


def take_turns(
    results: Results, cells: Mapping[str, Callable[[], Run]], connections: int, rounds: int, log: bool = True
) -> None:
    """Each cell measured once a round, in turn, `rounds` times; a cell is its median round, its rounds kept."""
    runs: dict[str, list[Run]] = {name: [] for name in cells}
    for turn in range(rounds):
        for name, cell in cells.items():
            run = cell()
            runs[name].append(run)
            if log:
                print(
                    f"bench: {name:14} c={connections:<3} round {turn + 1}/{rounds} {run.rps:8.0f} req/s"
                    f"  p99 {run.p99_ms:6.2f} ms",
                    flush=True,
                )
    for name, measured in runs.items():
        results.cells[(name, connections)] = median_run(measured)
        results.rounds[(name, connections)] = [run.rps for run in measured]


def median_run(runs: Sequence[Run]) -> Run:
    """The round with the median throughput (the lower middle one of an even count), whole: its latency,
    answers and CPU are that round's own."""
    ordered = sorted(runs, key=lambda run: run.rps)
    return ordered[(len(ordered) - 1) // 2]


def store_cells(wrk: str, seconds: float, warmup: float, rounds: int = 2, connections: int = 32) -> Results:
    """The mock with `--store` (a throwaway redis-server) at 1 and 2 workers beside one in-memory worker, on the
    mix and on the many-keys mix, the three servers taking turns within each round; empty without redis-server."""
    results = Results()
    with redis_server() as redis:
        if redis is None:
            print("bench: redis-server is not installed: no --store cells", flush=True)
            return results
        keys = (*KEYS, *(generated_key(number) for number in range(MANY_KEYS)))
        servers: dict[str, tuple[Server, RedisServer | None]] = {IN_MEMORY: (mock_server(keys, name="mock-1"), None)}
        for workers in STORE_WORKERS:  # one Redis database each: the two never see each other's sessions
            extra = ("--store", redis.database(workers), "--workers", str(workers))
            servers[f"store-{workers}"] = (mock_server(keys, extra=extra, name=f"mock-store-{workers}"), redis)
        try:
            for server, _ in servers.values():
                server.start()
                for script in STORE_MIXES.values():  # the many-keys warm-up also creates its keys' first sessions
                    measure(server, wrk, connections, warmup, script)
            cells = {
                name + suffix: _cell(server, wrk, connections, seconds, script, store)
                for suffix, script in STORE_MIXES.items()
                for name, (server, store) in servers.items()
            }
            take_turns(results, cells, connections, rounds)
        finally:
            for server, _ in servers.values():
                server.stop()
    return results


def memory_soak(
    wrk: str, *, keys: int, requests: int, warm: int, connections: int = 32, store: RedisServer | None = None
) -> Memory:
    """RSS of a mock accepting any key: at start, after `warm` requests (every key seen), after `requests` in all.

    With `store`, the mock (1 worker) keeps its state there, and the redis-server's RSS is read beside it.
    """
    extra = ("--accept-any-key",) if store is None else ("--accept-any-key", "--store", store.url)
    with mock_server((), extra=extra, name="mock-soak" if store is None else "mock-store-soak") as server:
        start, store_start = server.rss_kib(), _rss(store)
        first = _soak(server, wrk, keys, warm, connections, store)
        warmed, store_warmed = server.rss_kib(), _rss(store)
        run = _soak(server, wrk, keys, requests - first.requests, connections, store)
        end, store_end = server.rss_kib(), _rss(store)
    store_rss = None if store is None else (store_start, store_warmed, store_end)
    merged = _merged([first, run])
    return Memory(keys, merged.requests, start, warmed, end, first.requests, merged, store_rss)


def store_memory_soak(wrk: str, *, keys: int, requests: int, warm: int) -> Memory | None:
    """The memory soak against a `--store` mock on a throwaway redis-server; None without redis-server."""
    with redis_server() as redis:
        if redis is None:
            print("bench: redis-server is not installed: no --store soak", flush=True)
            return None
        return memory_soak(wrk, keys=keys, requests=requests, warm=warm, store=redis)


def _rss(store: RedisServer | None) -> int:
    return 0 if store is None else store.rss_kib()


def _soak(server: Server, wrk: str, keys: int, requests: int, connections: int, store: RedisServer | None) -> Run:
    """At least `requests` requests, as wrk runs sized by the rate seen so far (wrk stops on time, not count)."""
    runs: list[Run] = []
    rate = 0.0
    while sum(run.requests for run in runs) < requests:
        remaining = requests - sum(run.requests for run in runs)
        seconds = min(max(remaining / rate, 1.0), 30.0) if rate else 2.0  # the first run measures the rate
        runs.append(measure(server, wrk, connections, seconds, ("keys", str(keys)), store))
        rate = runs[-1].rps
    return _merged(runs)


def _merged(runs: Sequence[Run]) -> Run:
    """Several runs as one: summed counts and times, the worst of their latency percentiles."""

    def total(field: str) -> dict[int, int]:
        counts: dict[int, int] = {}
        for run in runs:
            for status, count in getattr(run, field).items():
                counts[status] = counts.get(status, 0) + count
        return counts

    seconds = sum(run.seconds for run in runs)
    return Run(
        connections=runs[0].connections,
        seconds=seconds,
        requests=sum(run.requests for run in runs),
        p50_ms=max(run.p50_ms for run in runs),
        p99_ms=max(run.p99_ms for run in runs),
        max_ms=max(run.max_ms for run in runs),
        socket_errors=sum(run.socket_errors for run in runs),
        statuses=total("statuses"),
        issued=total("issued"),
        wrk_cpu=sum(run.wrk_cpu * run.seconds for run in runs) / seconds,
        server_cpu=sum(run.server_cpu * run.seconds for run in runs) / seconds,
        store_cpu=None
        if runs[0].store_cpu is None
        else sum((run.store_cpu or 0) * run.seconds for run in runs) / seconds,
    )


def contract_run(timeout: float = 900) -> Contract:
    """The conformance suite's default run (`python -m contracts`), if it has been built."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "contracts"], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return Contract(f"timed out after {timeout:.0f} s", timeout)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    if done.returncode == 2 and NOT_BUILT in output:
        return Contract(NOT_BUILT)
    status = "ran" if done.returncode == 0 else f"failed (exit {done.returncode})"
    return Contract(
        status,
        seconds,
        _tests(output),
        _number(r"requests sent: (\d[\d,]*)", output),
        _own_seconds(output),
        _generated(output),
    )


def _generated(output: str) -> int | None:
    found = re.findall(r"generated: (\d+) Schemathesis cases, (\d+) state-machine steps", output)
    return int(found[-1][0]) + int(found[-1][1]) if found else None


def _number(pattern: str, output: str) -> int | None:
    found = re.findall(pattern, output)
    return int(found[-1].replace(",", "")) if found else None


def _own_seconds(output: str) -> float | None:
    found = re.findall(r"wall time: ([\d.]+) ?s", output)
    return float(found[-1]) if found else None


def _tests(output: str) -> int | None:
    """The pytest items of the last summary line (passed, failed, skipped ...)."""
    summaries = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed).* in [\d.]+s", line)]
    if not summaries:
        return None
    counts = re.findall(r"(\d+) (?:passed|failed|skipped|xfailed|xpassed|errors?)\b", summaries[-1])
    return sum(int(count) for count in counts)
