"""The C3 scenarios against a URL without the mock's admin API, as a user runs them on a real gateway.

With `--allow-chat` the automation scenario checks C3; the duration scenario cannot be checked without the
target's admin clock (the key's automation duration is an hour by default) and says so instead of waiting.
"""

from __future__ import annotations

import subprocess
import sys

from contracts.chat import NO_DURATION_CONTROL
from contracts.settings import MOCK_KEYS
from tests.served import serving


def test_c3_is_checked_over_http_and_the_duration_part_skips_with_its_reason() -> None:
    with serving("--log-level", "warning", keys=MOCK_KEYS, admin=False) as plain:
        keys = [part for key in MOCK_KEYS for part in ("--api-key", key)]
        command = [sys.executable, "-m", "contracts", "--base-url", plain.url, *keys, "--allow-chat"]
        run = subprocess.run([*command, "-k", "test_c3", "-rs"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "  C3  passed   (1 checked" in run.stdout, run.stdout[-3000:]
    assert NO_DURATION_CONTROL in " ".join(run.stdout.split()), run.stdout[-3000:]
