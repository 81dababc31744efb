"""The mock as users serve it (`python -m mockserver`, its own process), and a raw-socket HTTP client."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from contracts.settings import MOCK_KEYS

KEYS = MOCK_KEYS
BANNER_LINES = 7  # what `python -m mockserver` prints before it serves (mockserver.serving.banner)


@dataclass
class Served:
    url: str
    host: str
    port: int
    process: subprocess.Popen[str]
    log: Path
    banner: list[str]

    def alive(self) -> bool:
        return self.process.poll() is None and requests.get(f"{self.url}/api/v1/models", timeout=5).status_code == 200

    def post(self, path: str, key: str = KEYS[0], **kwargs: Any) -> requests.Response:
        return requests.post(f"{self.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30, **kwargs)


@contextlib.contextmanager
def serving(
    *extra: str,
    keys: Sequence[str] = KEYS,
    admin: bool = True,
    program: Sequence[str] = (sys.executable, "-m", "mockserver"),
) -> Iterator[Served]:
    """`python -m mockserver --port 0` (or another `program`: an installed `morpheus-mock`) with `keys` (and
    `--admin`) and `extra` flags, stopped on exit."""
    flags = [part for key in keys for part in ("--key", key)] + (["--admin"] if admin else [])
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "mock.log"
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [*program, "--port", "0", *flags, *extra],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
            assert process.stdout is not None
            banner = [process.stdout.readline() for _ in range(BANNER_LINES)]
            url = banner[0].rsplit(" on ", 1)[1].strip()
            host, port = url.removeprefix("http://").rsplit(":", 1)
            try:
                yield Served(url, host, int(port), process, log, banner)
            finally:
                if process.poll() is None:
                    process.terminate()
                process.communicate(timeout=20)


def send_raw(host: str, port: int, data: bytes, *, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; read the whole answer (the server closes, or Content-Length tells the end)."""
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split(" ")[1]), headers, body
