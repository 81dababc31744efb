"""`python -m mockserver` / `morpheus-mock`: flags and environment -> Config -> uvicorn. No logic here."""

from __future__ import annotations

import asyncio
import json
import logging
import logging.config
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

from mockserver.config import Config, ConfigError, config_from_args, log_config, startup_warnings
from mockserver.domain import DomainError, key_prefix
from mockserver.recording import ServedRecording
from mockserver.web.app import ARGV_VARIABLE, create_app
from mockserver.web.errors import WebError
from mockserver.web.protocol import JsonErrorsH11, JsonErrorsHttpTools

APP_FACTORY = "mockserver.web.app:app_from_environment"

EXAMPLE_MODEL = "mistral-31-24b"
DEMO_KEY = "sk-Demo01." + "0123456789abcdef" * 4


def banner(config: Config, key_count: int, url: str) -> str:
    """What the mock prints on start: where it listens, its keys, and a curl that works."""
    authorization, where = _curl_key(config.keys[0] if config.keys else None)
    lines = [
        f"Morpheus mock gateway (session API of v1.14.0) on {url}",
        f"  keys: {key_count} registered" + (", and any well-formed key is accepted" if config.accept_any_key else ""),
        f"  API docs: {url}/docs; admin dashboard: {url}/__admin"
        if config.admin
        else f"  API docs: {url}/docs; admin API: off (--admin to enable)",
        f"  try{where}:",
        f"    curl -X POST '{url}/api/v1/session/modelsession?model_id={EXAMPLE_MODEL}' \\",
        f"      -H {authorization} -H 'Content-Type: application/json' \\",
        """      -d '{"sessionDuration": 3600, "directPayment": false, "failover": false}'""",
    ]
    return "\n".join(lines)


def _curl_key(key: str | None) -> tuple[str, str]:
    """The curl's Authorization header, and what the `try` line says of it. A key is printed by its prefix only
    (the curl reads it from $KEY); the public demo key of `make mock` is printed whole, so its curl works as is."""
    if key is None:
        return "'Authorization: Bearer <your key>'", ""
    if key == DEMO_KEY:
        return f"'Authorization: Bearer {key}'", ""
    return '"Authorization: Bearer $KEY"', f" (with KEY set to your key {key_prefix(key)}…)"


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket, made with its protocol named (IPPROTO_TCP).

    asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections of a socket whose
    protocol is IPPROTO_TCP; `socket.create_server` leaves it 0, and every answer uvicorn writes in
    two parts then waited for the client's delayed ACK: 40 ms a request without uvloop.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name not in ("nt", "cygwin"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as socket.create_server does
        sock.bind((host, port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config = config_from_args(args, os.environ)
        app = create_app(config)
        served = app if config.record is None else ServedRecording(config.record).wrap(app)
    except (ConfigError, DomainError, WebError) as error:
        print(f"morpheus-mock: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the recording's file cannot be written
        print(f"morpheus-mock: --record {config.record}: {error.strerror or error}", file=sys.stderr)
        return 2
    try:
        sock = listen(config.host, config.port)
    except OSError as error:
        print(f"morpheus-mock: cannot listen on {config.host}:{config.port}: {error.strerror}", file=sys.stderr)
        return 2
    url = f"http://{config.host}:{sock.getsockname()[1]}"
    print(banner(config, len(app.state.mock.keys), url), flush=True)
    logging_config = log_config(config.log_level)
    logging.config.dictConfig(logging_config)
    for warning in startup_warnings(config, len(app.state.mock.keys)):
        logging.getLogger("mockserver").warning("%s", warning)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT (in-flight requests finish), then re-raises the signal
    # to the handler that was there before it: a no-op here, so a requested stop exits 0.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: None)
    options: dict[str, Any] = {
        "log_level": config.log_level,
        "log_config": logging_config,
        "access_log": False,
        "http": http_protocol(),
        # uvicorn would rewrite each request's client and scheme from X-Forwarded-*: nothing here reads them
        # (--enforce-https reads X-Forwarded-Proto itself), and the rewrite is ~2% of a request's CPU.
        "proxy_headers": False,
    }
    if config.workers > 1:
        os.environ[ARGV_VARIABLE] = json.dumps(args)  # each worker process builds its app from them
        uvicorn.run(APP_FACTORY, factory=True, fd=sock.fileno(), workers=config.workers, **options)
        return 0
    uvicorn.Server(uvicorn.Config(served, **options)).run(sockets=[sock])
    return 0


def http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's fastest HTTP protocol here (httptools, else h11), answering unparsable requests in JSON."""
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - httptools is a dependency; h11 is uvicorn's own fallback
        return JsonErrorsH11
    return JsonErrorsHttpTools


if __name__ == "__main__":
    sys.exit(main())
