"""What users type: `make contract API_KEY="k1 k2"` (several keys, none in full), `morpheus-contract --help`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.__main__ import main
from contracts.settings import ENV
from tests.served import serving

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("sk-Make01." + "12" * 32, "sk-Make02." + "34" * 32)


def test_make_contract_takes_several_keys_and_prints_none_in_full() -> None:
    with serving(keys=KEYS) as served:
        run = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "contract",
                f"BASE_URL={served.url}",
                f"API_KEY={' '.join(KEYS)}",
                "ARGS=-k r7_the_other_keys",  # one fixed scenario that needs both keys
            ],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=ROOT,
            env={n: v for n, v in os.environ.items() if not n.startswith(("MORPHEUS_", "MAKE", "MFLAGS"))},
        )
    output = run.stdout + run.stderr
    assert f"-m contracts --base-url {served.url}" in output  # make echoes the command, without the keys
    assert "1 passed" in output, output[-3000:]
    assert all(f"{key[:9]}…" in output for key in KEYS)  # the summary names both keys, by prefix
    for key in KEYS:
        assert key not in output
        assert key[10:] not in output


def test_help_shows_the_kits_options_each_with_its_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: morpheus-contract [options] [pytest options]")
    assert len(shown.splitlines()) < 80  # not pytest's hundreds of lines
    for line in ("  --base-url URL", "  --api-key KEY", "  --max-sessions N", "  --allow-spend\n"):
        assert line in shown
    assert all(f"env {variable}" in shown for variable in ENV.values())
    assert "env MORPHEUS_SESSION_DURATION; default: 300" in shown
    assert "env MORPHEUS_API_KEYS; repeatable; default: none" in shown
    assert "--help-pytest" in shown


def test_help_pytest_lists_pytests_own_options() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "contracts", "--help-pytest"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "--junit-xml" in run.stdout
    assert "--base-url" in run.stdout
