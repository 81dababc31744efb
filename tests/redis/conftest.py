"""A real redis-server on a free loopback port (the project installs the Debian package; see .ci/run)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from mockserver.store.redis.wire import Wire, connect


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (`make test` and .ci/run install the Debian package)")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            connect(url)
            break
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A synchronous client on an empty store in layout 3: what another worker, or the test, does around the mock."""
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    connect(redis_url)  # marks the layout again
    yield connection
    connection.close()


@pytest.fixture
def wire(redis_url: str, client: redis.Redis) -> Wire:
    """A worker's wire to that store (its connections open in the loop of each test)."""
    return connect(redis_url)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
