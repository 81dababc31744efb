"""`make contract API_KEY="k1 k2"`: several keys through make, and neither make nor the suite prints one in full."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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
            env={name: value for name, value in os.environ.items() if not name.startswith("MORPHEUS_")},
        )
    output = run.stdout + run.stderr
    assert f"-m contracts --base-url {served.url}" in output  # make echoes the command, without the keys
    assert "1 passed" in output, output[-3000:]
    assert all(f"{key[:9]}…" in output for key in KEYS)  # the summary names both keys, by prefix
    for key in KEYS:
        assert key not in output
        assert key[10:] not in output
