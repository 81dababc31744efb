"""`python -m bench.inprocess`: the mock app's own cost per request of the bench mix, without network or HTTP parser.

Run from a directory whose `mockserver` package is the one to measure (bench.compare --in-process
does that for each revision). The ASGI app is called directly with the mix's requests, as uvicorn
would call it, in serve mode (self-check log, the collector frozen and the loop uvloop's when installed,
as `python -m mockserver` runs); prints one line `INPROCESS <microseconds of CPU per request>`. The
figure moves less with the machine's noise than a served run, so it shows changes of a few percent that
the served benchmark cannot.

`--store` runs the app on a throwaway redis-server (`--store redis://`, one worker), `--keys N` spreads
the mix over N generated keys (each pass walks one key through the mix, the passes take the keys in turn,
as the bench's many-keys mix does), `--tasks T` has T requests under way
at once (a `--store` worker's round trips are shared by the requests of a loop turn: one task measures
the worst case, 32 the bench's connections). `--instructions` counts instead of timing: the measured
passes run under valgrind's callgrind, and the line is `INSTRUCTIONS <instructions per request>`. A
count is the same from run to run within a fraction of a percent whatever the machine is doing (the
redis-server runs outside valgrind, and the kernel's work is not counted): it resolves a change of
1% where timings on a noisy machine move by 20%.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import IO, Any

from bench.run import KEYS, generated_key
from bench.servers import redis_server

# The mix of bench/mix.lua (kept in step with it), as (path, query, key slot, body); slot None sends no key.
GOOD = b'{"sessionDuration": 3600, "directPayment": false, "failover": false}'
BAD = b'{"sessionDuration": "abc", "directPayment": false, "failover": false}'
MODEL = "/api/v1/session/modelsession"
MIX: tuple[tuple[str, bytes, int | None, bytes], ...] = (
    (MODEL, b"model_id=mistral-31-24b", 0, GOOD),
    (MODEL, b"model_id=llama-3.3-70b", 1, GOOD),
    (MODEL, b"model_id=mistral-31-24b", 1, GOOD),
    ("/api/v1/session/pingsession", b"", 0, b""),
    (MODEL, b"model_id=mistral-31-24b", 2, GOOD),
    ("/api/v1/session/closesession", b"", 2, b""),
    ("/api/v1/session/pingsession", b"", None, b""),
    (MODEL, b"model_id=mistral-31-24b", 0, BAD),
)
READY, DONE = "READY", "DONE"  # what a pass under callgrind prints before and after what it measures


def scope(path: str, query: bytes, key: str | None, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    if key is not None:
        headers.append((b"authorization", b"Bearer " + key.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
        "state": {},
    }


Cycle = list[tuple[dict[str, Any], bytes]]


def cycles(keys: int) -> list[Cycle]:
    """One pass over the mix per key set: the three bench keys, or (`keys` > 0) the i-th generated key in
    every slot of the i-th pass, as mix.lua's `keys` mode sends them."""
    sets = [KEYS] if not keys else [(generated_key(number),) * 3 for number in range(keys)]
    return [
        [(scope(path, query, None if slot is None else chosen[slot], body), body) for path, query, slot, body in MIX]
        for chosen in sets
    ]


async def measure(
    rounds: int, passes: int, *, store: str | None = None, keys: int = 0, tasks: int = 1, pause: IO[str] | None = None
) -> list[float]:
    """Microseconds of CPU per request, one figure per round of `passes` passes over the mix (split among
    `tasks` tasks). With `pause` (under callgrind) one round, between the READY and DONE lines, each
    printed once a line of `pause` is read."""
    from mockserver.config import Config, SelfCheck
    from mockserver.serving import frozen
    from mockserver.web.app import create_app

    app = frozen(create_app(Config(keys=KEYS, self_check=SelfCheck.LOG, store=store, accept_any_key=keys > 0)))
    mix = cycles(keys)

    async def call(template: dict[str, Any], body: bytes) -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # a disconnect never comes: the app does not wait for one here
            raise AssertionError("unreachable")

        async def send(message: MutableMapping[str, Any]) -> None:
            return None

        await app({**template, "headers": list(template["headers"]), "state": {}}, receive, send)

    async def run(count: int) -> None:
        async def task(first: int) -> None:
            for number in range(first, first + count // tasks):
                for template, body in mix[number % len(mix)]:
                    await call(template, body)

        await asyncio.gather(*(task(index * 7) for index in range(tasks)))

    async with app.router.lifespan_context(app):
        await run(max(passes // 5, tasks))  # warm-up: lazily built validators, caches, the store's connection
        per_request = []
        for _ in range(1 if pause is not None else rounds):
            if pause is not None:
                print(READY, flush=True)
                pause.readline()
            started = time.process_time()
            await run(passes)
            per_request.append((time.process_time() - started) / (passes // tasks * tasks * len(MIX)) * 1e6)
            if pause is not None:
                print(DONE, flush=True)
                pause.readline()
    return per_request


def instructions(argv: Sequence[str], passes: int, tasks: int) -> float:
    """Instructions per request of the measured passes: this module again under callgrind, its instrumentation
    switched on (`callgrind_control`) only between its READY and DONE."""
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if valgrind is None or control is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as scratch:
        out = Path(scratch) / "callgrind.out"
        command = [valgrind, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        command += [sys.executable, "-m", "bench.inprocess", *argv, "--paused"]
        with subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        ) as child:
            for switch in ("on", "off"):
                _wait_for(child, READY if switch == "on" else DONE)
                subprocess.run([control, "-i", switch, str(child.pid)], capture_output=True, check=True)
                _tell(child)
        if child.returncode:
            raise SystemExit(f"the pass under callgrind failed (exit {child.returncode})")
        totals = next(line for line in out.read_text().splitlines() if line.startswith("totals:"))
    return int(totals.split()[1]) / (passes // tasks * tasks * len(MIX))


def _wait_for(child: subprocess.Popen[str], line: str) -> None:
    for printed in child.stdout or ():
        if printed.strip() == line:
            return
    raise SystemExit(f"the pass under callgrind ended before {line}")


def _tell(child: subprocess.Popen[str]) -> None:
    if child.stdin is not None:
        child.stdin.write("\n")
        child.stdin.flush()


def run_loop(main: Coroutine[Any, Any, list[float]]) -> list[float]:
    """`main` on uvloop's loop when it is installed (as uvicorn's `auto` picks it), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed wherever the mock is served on it
        return asyncio.run(main)
    return uvloop.run(main)


@contextlib.contextmanager
def store_for(args: argparse.Namespace) -> Iterator[str | None]:
    """The store the app runs on: the one named, a throwaway redis-server (`--store`), or none."""
    if args.store_url or not args.store:
        yield args.store_url
        return
    with redis_server() as server:
        if server is None:
            raise SystemExit("--store needs redis-server (apt-get install redis-server)")
        yield server.url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=1000, help="passes over the mix per round")
    parser.add_argument("--store", action="store_true", help="on a throwaway redis-server (--store redis://)")
    parser.add_argument("--keys", type=int, default=0, help="the mix over this many generated keys in turn")
    parser.add_argument("--tasks", type=int, default=1, help="requests under way at once")
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind")
    parser.add_argument("--store-url", help=argparse.SUPPRESS)  # the store a pass under callgrind is given
    parser.add_argument("--paused", action="store_true", help=argparse.SUPPRESS)  # that pass waits for its switch
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.cycles < args.tasks:
        parser.error("--tasks must be at least 1 and at most --cycles")
    with store_for(args) as store:
        if args.instructions:
            forwarded = ["--cycles", str(args.cycles), "--keys", str(args.keys), "--tasks", str(args.tasks)]
            if store is not None:
                forwarded += ["--store-url", store]
            print(f"INSTRUCTIONS {instructions(forwarded, args.cycles, args.tasks):.0f}", flush=True)
            return 0
        pause = sys.stdin if args.paused else None
        per_request = run_loop(
            measure(args.rounds, args.cycles, store=store, keys=args.keys, tasks=args.tasks, pause=pause)
        )
    if not args.paused:  # under callgrind the time means nothing, and nobody reads it
        print(f"INPROCESS {statistics.median(per_request):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
