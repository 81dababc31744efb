"""`python -m bench.inprocess`: the mock app's own cost per request of the bench mix, without network or HTTP parser.

Run from a directory whose `mockserver` package is the one to measure (bench.compare --in-process
does that for each revision). The ASGI app is called directly with the mix's requests, as uvicorn
would call it, in serve mode (self-check log); prints one line `INPROCESS <microseconds per request>`.
The figure moves little with the machine's noise, so it shows changes of a few percent that the
served benchmark cannot.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import MutableMapping, Sequence
from typing import Any

from bench.run import KEYS

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


async def measure(rounds: int, cycles: int) -> list[float]:
    from mockserver.config import Config, SelfCheck
    from mockserver.web.app import create_app

    app = create_app(Config(keys=KEYS, self_check=SelfCheck.LOG))
    requests = [
        (scope(path, query, None if slot is None else KEYS[slot], body), body) for path, query, slot, body in MIX
    ]

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

    for _ in range(cycles // 5):  # warm-up: lazily built validators, caches
        for template, body in requests:
            await call(template, body)
    per_request = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(cycles):
            for template, body in requests:
                await call(template, body)
        per_request.append((time.perf_counter() - started) / (cycles * len(requests)) * 1e6)
    return per_request


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=1000, help="passes over the mix per round")
    args = parser.parse_args(argv)
    per_request = asyncio.run(measure(args.rounds, args.cycles))
    print(f"INPROCESS {statistics.median(per_request):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
