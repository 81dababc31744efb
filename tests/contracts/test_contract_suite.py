"""The contract suite run as a user runs it: it passes against the mock, in-process and served, and stops
with one message against a target without the session API. (Broken gateways: tests/gallery.)"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from contracts.settings import MOCK_KEYS
from mockserver.config import Config
from mockserver.web.app import create_app
from tests.live import LiveServer
from tests.served import serving

QUICK = ["--examples", "10", "--stateful-runs", "15", "-q", "-p", "no:cacheprovider"]


def _contract(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "contracts", *args, *QUICK]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _against(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    keys = [part for key in MOCK_KEYS for part in ("--api-key", key)]
    return _contract("--base-url", url, *keys, "--rate-limit", "0", "--max-sessions", "0", *extra)


@pytest.fixture
def served_mock() -> Iterator[str]:
    """`python -m mockserver` in its own process, on a free loopback port."""
    with serving("--log-level", "warning", keys=MOCK_KEYS) as mock:
        yield mock.url


def test_the_suite_passes_against_the_in_process_mock() -> None:
    run = _contract()
    assert run.returncode == 0, run.stdout[-3000:]
    assert "target: the in-process mock" in run.stdout
    for rule in ("R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8"):
        assert re.search(rf"{rule}\s+passed", run.stdout), rule
    assert re.search(r"wall time: \d+\.\d s", run.stdout)
    assert MOCK_KEYS[0] not in run.stdout + run.stderr


def test_the_suite_passes_against_a_served_mock(served_mock: str) -> None:
    run = _against(served_mock)
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"target: {served_mock}" in run.stdout
    assert "time control (R6): yes (admin clock)" in run.stdout


def test_a_target_without_the_session_api_fails_fast_with_one_message() -> None:
    from starlette.applications import Starlette

    with LiveServer(Starlette()) as server:
        run = _contract("--base-url", server.url, "--api-key", MOCK_KEYS[0])
    assert run.returncode == 4
    assert "the target has no session API: POST" in run.stderr
    assert run.stdout.count("404") <= 2


POOL = (*MOCK_KEYS, "sk-Contr3." + "0123456789abcdef" * 4, "sk-Contr4." + "0123456789abcdef" * 4)


def test_parallel_workers_each_take_their_share_of_the_key_pool() -> None:
    """pytest -n 2 against one served mock: each worker runs the whole suite with two keys of its own."""
    with LiveServer(create_app(Config(keys=POOL, admin=True))) as server:
        keys = [part for key in POOL for part in ("--api-key", key)]
        run = _contract("--base-url", server.url, *keys, "--rate-limit", "0", "--max-sessions", "0", "-n", "2")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "workers: 2" in run.stdout
    assert re.search(r"R7\s+passed", run.stdout)
    assert "keys used: 4" in run.stdout


def test_parallel_workers_need_enough_keys() -> None:
    with LiveServer(create_app(Config(keys=POOL, admin=True))) as server:
        run = _contract("--base-url", server.url, "--api-key", POOL[0], "-n", "2")
    assert run.returncode != 0
    assert "2 parallel workers need at least 2 API keys" in run.stdout + run.stderr
