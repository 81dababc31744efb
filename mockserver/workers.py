"""`--workers N`: N uvicorn worker processes on one port, each on a listening socket of its own.

The sockets share the port (SO_REUSEPORT), so the kernel hands each new connection to one of them by its
addresses, and connections spread evenly. On one socket shared by every worker (uvicorn's supervisor), the
first worker to wake accepted a whole burst: 32 connections opened at once went 32/0, 30/2 or 29/3 in half of
the runs, and two `--store` workers then served like one (3,300-3,700 req/s against 5,400-5,800 split; quick
runs on 64 keys). `Workers` starts one worker a socket and says when every one of them serves (a connection
the kernel gives a worker still starting waits for it: the mock's banner comes after), starts another on a
worker's socket when one exits on its own (connections the kernel gives that socket would wait for nobody),
and stops them all on SIGINT or SIGTERM (each finishes the requests it is serving).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from mockserver.serving import listen, stop_quietly

POLL = 0.2  # seconds between looks at the workers
STARTING = 0.01  # the same, until every worker serves
logger = logging.getLogger("mockserver")


def listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one port of `host` (port 0: a free one): one plain socket for one worker, else
    sockets that share the port. OSError if the port is in use, even by sockets that share a port the same way
    (another mock of the same user's)."""
    if count == 1:
        return [listen(host, port)]
    if port:
        listen(host, port).close()  # a port in use fails here, as it does for one worker
    first = listen(host, port, reuse_port=True)
    try:
        return [first, *(listen(host, first.getsockname()[1], reuse_port=True) for _ in range(count - 1))]
    except OSError:
        first.close()
        raise


class Workers:
    """One worker process a socket, each serving the app `factory` names (uvicorn's `factory=True`) with
    uvicorn `options`, kept up until SIGINT or SIGTERM."""

    def __init__(self, sockets: Sequence[socket.socket], factory: str, options: dict[str, Any]) -> None:
        self.sockets, self.factory, self.options = list(sockets), factory, options
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()
        self.serving = [self.context.Event() for _ in self.sockets]  # set by the worker on each socket, once it serves

    def run(self, ready: Callable[[], None] = lambda: None) -> int:
        """Serve until a signal stops it: 0; or 1 once a worker's start-up failed (the others are stopped).
        `ready` is called once, when every worker serves."""
        before = {stop: signal.signal(stop, lambda *_: self.stopping.set()) for stop in (signal.SIGINT, signal.SIGTERM)}
        processes = [self._start(index) for index in range(len(self.sockets))]
        failed = announced = False
        try:
            while not failed and not self.stopping.wait(POLL if announced else STARTING):
                failed = self._keep(processes)
                if not failed and not announced and all(serving.is_set() for serving in self.serving):
                    announced = True
                    ready()
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()  # SIGTERM: it finishes what it serves, then exits
            for process in processes:
                process.join()
            for stop, handler in before.items():
                signal.signal(stop, handler)
        return 1 if failed else 0

    def _keep(self, processes: list[BaseProcess]) -> bool:
        """Start another worker on the socket of each that exited on its own; True if one's start-up failed."""
        for index, process in enumerate(processes):
            if process.is_alive() or self.stopping.is_set():
                continue
            if process.exitcode == STARTUP_FAILURE:
                logger.error("worker %s could not start (see above): stopping the others", process.pid)
                return True
            logger.warning("worker %s exited (code %s): starting another", process.pid, process.exitcode)
            processes[index] = self._start(index)
        return False

    def _start(self, index: int) -> BaseProcess:
        args = (self.factory, self.options, self.sockets[index], self.serving[index])
        process = self.context.Process(target=serve, args=args, name="morpheus-worker")
        process.start()
        return process


def serve(factory: str, options: dict[str, Any], sock: socket.socket, serving: Event) -> None:
    """One worker process: uvicorn serving the app `factory` builds, on `sock` (uvicorn handles its signals);
    `serving` is set once it serves; a stop exits 0."""
    stop_quietly()
    _Server(uvicorn.Config(factory, factory=True, **options), serving).run(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server, which sets `serving` once started (its app built, its lifespan started, its socket served)."""

    def __init__(self, config: uvicorn.Config, serving: Event) -> None:
        super().__init__(config)
        self.serving = serving

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # a start-up that fails exits (STARTUP_FAILURE)
        self.serving.set()
