"""`python -m mockserver` / `morpheus-mock`: flags and environment -> Config -> uvicorn (the serving
parts: `mockserver.serving`)."""

from __future__ import annotations

import functools
import json
import logging
import logging.config
import os
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

from mockserver.config import ConfigError, config_from_args, log_config, startup_warnings
from mockserver.domain import DomainError
from mockserver.recording import ServedRecording
from mockserver.serving import banner, frozen, http_protocol, stop_quietly
from mockserver.web.app import ARGV_VARIABLE, create_app
from mockserver.web.errors import WebError
from mockserver.workers import Workers, listeners

APP_FACTORY = "mockserver.serving:worker_app"


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
        sockets = listeners(config.host, config.port, config.workers)
    except OSError as error:
        print(f"morpheus-mock: cannot listen on {config.host}:{config.port}: {error.strerror}", file=sys.stderr)
        return 2
    url = f"http://{config.host}:{sockets[0].getsockname()[1]}"
    announce = functools.partial(print, banner(config, app.state.mock.keys.configured(), url), flush=True)
    logging_config = log_config(config.log_level)
    logging.config.dictConfig(logging_config)
    for warning in startup_warnings(config, app.state.mock.keys.configured()):
        logging.getLogger("mockserver").warning("%s", warning)
    stop_quietly()
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
        return Workers(sockets, APP_FACTORY, options).run(announce)  # each worker on a socket of its own
    announce()  # the one socket waits for the one worker: a connection made now is served once it starts
    uvicorn.Server(uvicorn.Config(frozen(served), **options)).run(sockets=sockets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
