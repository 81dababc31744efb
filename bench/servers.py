"""The servers under test: started as child processes on free loopback ports, stopped by their own pid."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SPEC = ROOT / "openapi" / "morpheus.yaml"
PRISM = BENCH / "node_modules" / ".bin" / "prism"
SCRATCH = BENCH / ".out"  # server logs and raw results of the last run (not committed)
HOST = "127.0.0.1"  # never anything but loopback
START_TIMEOUT = 90.0
_URL = re.compile(r"http://127\.0\.0\.1:(\d+)")


def free_port() -> int:
    """A loopback port nobody listens on right now (for servers that cannot be given port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """One server process; `url` is known once it answers HTTP."""

    name: str
    command: Sequence[str]
    port: int | None = None  # None: the server picks a free port and prints its URL
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    log: Path = SCRATCH / "server.log"

    def start(self) -> Server:
        SCRATCH.mkdir(exist_ok=True)
        self.log = SCRATCH / f"{self.name}.log"
        # Output goes to a file, never a pipe: a server that logs under load must not block on it.
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                list(self.command),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped by its pid, never by name
            )
        port = self.port if self.port is not None else self._printed_port()
        self.url = f"http://{HOST}:{port}"
        self._wait_until_it_answers(port)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _printed_port(self) -> int:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            found = _URL.search(self.output())
            if found:
                return int(found.group(1))
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not print its URL:\n{self.output()}")

    def _wait_until_it_answers(self, port: int) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            try:
                connection.request("GET", "/api/v1/models")
                connection.getresponse().read()
                return
            except OSError:
                time.sleep(0.2)
            finally:
                connection.close()
        raise RuntimeError(f"{self.name} did not answer on {HOST}:{port} within {START_TIMEOUT:.0f} s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kib(self) -> int:
        """The process's resident set size now (VmRSS), in KiB (with one worker, the worker's)."""
        return rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time the server's processes (its group: workers too) have used so far."""
        return group_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the group this server leads (start_new_session)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def mock_server(
    keys: Sequence[str],
    *,
    extra: Sequence[str] = (),
    launch: Sequence[str] = ("-m", "mockserver"),
    cwd: Path = ROOT,
    name: str = "mock",
) -> Server:
    """`python -m mockserver` as served: the CLI's defaults (self-check log, info logging).

    `launch` replaces `-m mockserver` (bench.compare wraps the CLI); `cwd` comes first on sys.path.
    """
    command = [sys.executable, *launch, "--host", HOST, "--port", "0", *extra]
    for key in keys:
        command += ["--key", key]
    return Server(name, command, cwd=cwd)


def prism_server() -> Server:
    port = free_port()
    command = [str(PRISM), "mock", "-h", HOST, "-p", str(port), "-v", "silent", str(SPEC)]
    return Server("prism", command, port=port)


def bare_server(*, json_work: bool = False) -> Server:
    command = [sys.executable, "-m", "bench.bare", "--port", "0", *(["--json-work"] if json_work else [])]
    return Server("bare-json" if json_work else "bare", command)


def rss_kib(pid: int) -> int:
    """The resident set size of process `pid` now (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def group_cpu_seconds(leader: int) -> float:
    """User + system CPU time the processes of the group `leader` leads (started with start_new_session) have
    used so far."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that ended meanwhile
            continue
        if int(fields[2]) == leader:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class RedisServer:
    """A throwaway redis-server: where it listens and the process group it leads (for its CPU time)."""

    url: str  # database 0
    pid: int

    def cpu_seconds(self) -> float:
        return group_cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def database(self, number: int) -> str:
        """The URL of the server's database `number` (mocks given different ones share nothing)."""
        return f"{self.url.rsplit('/', 1)[0]}/{number}"


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer | None]:
    """A throwaway redis-server on a free loopback port, or None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    flags = ["--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([binary, *flags], stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on {HOST}:{port}") from None
                time.sleep(0.05)
        yield RedisServer(f"redis://{HOST}:{port}/0", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=15)
