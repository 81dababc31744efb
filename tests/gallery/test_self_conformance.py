"""The Schemathesis CLI, all phases and every check the contract suite enables, against the served mock.

Checks left off (as in contracts/test_conformance.py): not_a_server_error (the gateway answers documented
500s; `server_errors_are_the_gateways` checks their texts instead), use_after_free and
ensure_resource_availability (the API has no resource paths; the session rules have their own state
machine). The contract's own checks are loaded with SCHEMATHESIS_HOOKS=contracts.checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.settings import MOCK_KEYS
from openapi import SPEC_PATH, load_spec
from tests.served import serving

EXCLUDED = "not_a_server_error,use_after_free,ensure_resource_availability"


@pytest.fixture
def served_mock() -> Iterator[str]:
    with serving("--self-check", "log", keys=MOCK_KEYS[:1], admin=False) as mock:
        yield mock.url
        mock.process.terminate()
        mock.process.wait(timeout=20)
        assert "self-check" not in mock.log.read_text()  # the mock never answered outside its own spec


def test_schemathesis_cli_finds_no_issue_in_the_served_mock(served_mock: str, tmp_path: Path) -> None:
    config = f'[auth.openapi.APIKeyAuth]\napi_key = "{MOCK_KEYS[0]}"\n'
    (tmp_path / "schemathesis.toml").write_text(config + '[generation]\ndatabase = "none"\n[cache]\nenabled = false\n')
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run", str(SPEC_PATH), "--url", served_mock,
        "--checks", "all", "--exclude-checks", EXCLUDED, "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", "30", "--generation-deterministic", "--no-color",
    ]  # fmt: skip
    environment = {**os.environ, "SCHEMATHESIS_HOOKS": "contracts.checks", "PYTHONPATH": str(Path.cwd())}
    run = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "No issues found" in run.stdout
    every = len(load_spec().operations)
    assert f"Selected: {every}/{every}" in run.stdout
