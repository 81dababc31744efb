"""The ceilings of the stack: Starlette + uvicorn answering every request with the same JSON, no logic.

`python -m bench.bare --port 0` serves it like `python -m mockserver` serves the mock (same uvicorn
settings, so the same loop and HTTP parser) and prints its URL. With `--json-work` the endpoint does
the JSON work every mock answer needs and nothing else: it reads and parses the body (when there is
one) and answers a JSON object built for the request.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mockserver.serving import LOOPBACK, listen

# The mix's most frequent answer: a modelsession 200 as the mock sends it.
BODY = {
    "success": True,
    "message": "Session created and associated with API key",
    "session_id": "0x7a1b4c8d6e0f3a9b5c2d3c9d2e7f1a4b8c6d0e5f9a2b7c1d4e8f3a6b0c9d5e2f",
    "api_key_prefix": "sk-BenchA",
    "model": "mistral-31-24b",
}


async def endpoint(request: Request) -> Response:
    return JSONResponse(BODY)


async def json_work(request: Request) -> Response:
    raw = await request.body()
    parsed = json.loads(raw) if raw else None
    return JSONResponse({**BODY, "received": isinstance(parsed, dict)})


def create_app(*, json_work_endpoint: bool = False) -> Starlette:
    chosen = json_work if json_work_endpoint else endpoint
    return Starlette(routes=[Route("/{path:path}", chosen, methods=["GET", "POST"])])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (auto: uvloop when installed)")
    parser.add_argument("--http", default="auto", help="uvicorn --http (auto: httptools when installed)")
    parser.add_argument("--json-work", action="store_true", help="parse the body and answer a JSON object built for it")
    args = parser.parse_args(argv)
    sock = listen(LOOPBACK, args.port)  # the mock's own socket: Nagle off under plain asyncio too
    print(f"bare Starlette on http://{LOOPBACK}:{sock.getsockname()[1]}", flush=True)
    app = create_app(json_work_endpoint=args.json_work)
    config = uvicorn.Config(app, log_level="info", access_log=False, loop=args.loop, http=args.http)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
