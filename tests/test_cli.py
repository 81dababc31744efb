"""`python -m mockserver` as a user starts it: the banner's curl works, R1 and R2 hold, SIGTERM exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from mockserver.config import Config
from mockserver.serving import DEMO_KEY, banner, listen
from tests.conftest import KEY
from tests.served import Served, serving

START_TIMEOUT = 20


@pytest.fixture
def served() -> Iterator[Served]:
    with serving("--log-level", "warning", keys=(KEY,), admin=False) as mock:
        yield mock


def _curl(banner: list[str], model: str | None = None) -> dict[str, Any]:
    command = "".join(banner[4:])
    if model is not None:
        command = command.replace("model_id=mistral-31-24b", f"model_id={model}")
    run = subprocess.run(
        ["bash", "-c", command.strip() + " --silent --show-error"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "KEY": KEY},  # as the banner's `try` line asks
    )
    assert run.returncode == 0, run.stderr
    body: dict[str, Any] = json.loads(run.stdout)
    return body


def test_the_printed_curl_opens_a_session_and_r1_r2_hold(served: Served) -> None:
    process, banner = served.process, served.banner
    assert re.match(
        r"Morpheus mock gateway \(session API of v1\.14\.0\) on http://127\.0\.0\.1:\d+$", banner[0].strip()
    )
    assert banner[1].strip() == "keys: 1 registered"
    assert banner[3].strip() == "try (with KEY set to your key sk-AbC123…):"
    assert KEY not in "".join(banner)  # keys appear by prefix only
    first = _curl(banner)
    assert first["success"] is True
    assert first["api_key_prefix"] == "sk-AbC123"
    assert _curl(banner)["session_id"] == first["session_id"]  # R1
    assert _curl(banner, "llama-3.3-70b")["session_id"] != first["session_id"]  # R2
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=START_TIMEOUT) == 0


def test_a_bad_key_stops_the_start_with_a_clear_message() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mockserver", "--key", "sk-nope"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2
    assert "morpheus-mock: API key 'sk-nope'" in run.stderr
    assert "sk-nope" not in run.stdout


def test_a_busy_port_stops_the_start_with_a_clear_message(served: Served) -> None:
    port = str(served.port)
    run = subprocess.run(
        [sys.executable, "-m", "mockserver", "--port", port], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in run.stderr


def test_connections_to_the_listening_socket_have_nagle_turned_off_under_plain_asyncio() -> None:
    """Without TCP_NODELAY a two-part answer waits for the client's delayed ACK (40 ms per request)."""
    sock = listen("127.0.0.1", 0)

    async def nodelay_of_an_accepted_connection() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        async with await asyncio.start_server(connected, sock=sock):
            _, client = await asyncio.open_connection(*sock.getsockname())
            try:
                return await asyncio.wait_for(accepted, 10)
            finally:
                client.close()

    assert asyncio.run(nodelay_of_an_accepted_connection()) != 0


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (
            ["--port", "70000"],
            {},
            "morpheus-mock: --port: expected a whole number from 0 to 65535, got '70000'",
        ),
        (
            [],
            {"MORPHEUS_MOCK_PORT": "abc"},
            "morpheus-mock: MORPHEUS_MOCK_PORT: expected a whole number from 0 to 65535",
        ),
        (["--workers", "0"], {}, "morpheus-mock: --workers: expected a whole number of at least 1, got '0'"),
    ],
)
def test_a_bad_flag_or_variable_is_one_line_on_stderr_and_exit_2(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mockserver", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **environ},
    )
    assert run.returncode == 2
    assert run.stderr.startswith(message)
    assert run.stderr.count("\n") == 1  # one line: no usage text, no traceback


def test_a_mock_with_no_key_warns_and_logs_each_request() -> None:
    with serving(keys=()) as mock:
        assert mock.post("/api/v1/session/pingsession", key=KEY).status_code == 401
        mock.process.terminate()
        mock.process.wait(timeout=START_TIMEOUT)
        log = mock.log.read_text()
    assert "WARNING:     no API key is registered" in log
    assert "--key" in log
    assert "--accept-any-key" in log
    assert re.search(r"INFO:     POST /api/v1/session/pingsession 401 key=sk-AbC123 \d+\.\d ms", log), log
    assert KEY not in log


def test_the_banner_prints_only_the_public_demo_key_whole() -> None:
    demo = banner(Config(keys=(DEMO_KEY,)), 1, "http://h:1")
    assert f"-H 'Authorization: Bearer {DEMO_KEY}'" in demo  # `make mock`'s curl works as printed
    assert "-H 'Authorization: Bearer <your key>'" in banner(Config(), 0, "http://h:1")
