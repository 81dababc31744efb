"""The differential run finds no difference between two mocks, and the first difference with a broken one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from contracts.client import Client
from contracts.diff import Side, main, mirrored, run_diff, sequence
from contracts.settings import MOCK_KEYS
from mockserver.config import Config
from mockserver.web.app import create_app
from tests.gallery.variants import VARIANTS
from tests.live import LiveServer
from tests.served import serving

ROOT = Path(__file__).resolve().parents[2]
# A served gateway's own keys: other prefixes than the mock's, so `api_key_prefix` tells them apart.
SERVED_KEYS = ("sk-Stag01." + "ab" * 32, "sk-Stag02." + "cd" * 32)

MODELS = ["mistral-31-24b", "llama-3.3-70b"]
STEPS = sequence(7, 60, MODELS, 2)


def _side(url: str) -> Side:
    return Side(Client(url, MOCK_KEYS, None), MOCK_KEYS)


def test_two_mocks_do_not_differ() -> None:
    with (
        LiveServer(create_app(Config(keys=MOCK_KEYS, admin=True))) as a,
        LiveServer(create_app(Config(keys=MOCK_KEYS, admin=True))) as b,
    ):
        assert run_diff(_side(a.url), _side(b.url), STEPS) == []


@pytest.mark.parametrize(
    ("name", "first_actions"),
    [
        ("reuse-opens-new", {"model", "unknown_model"}),
        ("close-keeps-session", {"ping", "model", "unknown_model", "close"}),
        ("missing-key-accepted", {"no_key"}),
        ("short-session-id", {"model", "unknown_model"}),
        ("422-detail-string", {"bad_body", "bad_json"}),
    ],
)
def test_a_broken_gateway_differs_at_its_first_wrong_answer(name: str, first_actions: set[str]) -> None:
    broken = VARIANTS[name].apply(create_app(Config(keys=MOCK_KEYS, admin=True)))
    with LiveServer(create_app(Config(keys=MOCK_KEYS, admin=True))) as a, LiveServer(broken) as b:
        differences = run_diff(_side(a.url), _side(b.url), STEPS)
    assert differences, f"{name}: no difference found"
    first = differences[0]
    assert first.step.action in first_actions, str(first)
    assert first.a != first.b


def test_diff_compares_two_in_process_mocks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--a", "mock", "--b", "mock", "--steps", "20"]) == 0
    assert "no difference in 20 steps (seed 7)" in capsys.readouterr().out


def test_diff_reports_the_first_difference_with_both_answers(capsys: pytest.CaptureFixture[str]) -> None:
    broken = VARIANTS["422-detail-string"].apply(create_app(Config(keys=MOCK_KEYS, admin=True)))
    with LiveServer(broken) as b:
        keys = [part for key in MOCK_KEYS for part in ("--b-api-key", key)]
        assert main(["--a", "mock", "--b", b.url, *keys]) == 1
    shown = capsys.readouterr().out
    assert "DIFFERENT" in shown
    assert "differing step(s); the first:" in shown
    assert "B: 422 application/json {'detail': 'Unprocessable Entity'}" in shown


def test_a_mock_side_mirrors_the_other_sides_key_prefixes() -> None:
    mirror = mirrored(SERVED_KEYS)
    assert [key[:9] for key in mirror] == [key[:9] for key in SERVED_KEYS]
    assert not set(mirror) & set(SERVED_KEYS)  # the secrets are the mock's own
    assert mirrored(()) == MOCK_KEYS
    with pytest.raises(SystemExit, match="cannot mirror key prefix"):
        mirrored(["not-a-key"])


def test_make_diff_against_a_served_mock_with_keys_of_its_own_finds_no_difference() -> None:
    """`make diff A=mock B=URL API_KEY="k1 k2"`: like with like, and no key printed in full."""
    with serving(keys=SERVED_KEYS) as served:
        run = subprocess.run(
            ["make", "--no-print-directory", "diff", "A=mock", f"B={served.url}", f"API_KEY={' '.join(SERVED_KEYS)}"],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=ROOT,
            # Neither the run's MORPHEUS_* settings nor an outer make's variables (`make test ARGS=...`) leak in.
            env={n: v for n, v in os.environ.items() if not n.startswith(("MORPHEUS_", "MAKE", "MFLAGS"))},
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "no difference in 60 steps (seed 7)" in run.stdout
    assert "key2" in run.stdout  # both keys were used
    for key in SERVED_KEYS:
        assert key not in run.stdout + run.stderr
        assert key[10:] not in run.stdout + run.stderr


def test_diff_without_keys_for_a_url_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MORPHEUS_API_KEYS", raising=False)
    monkeypatch.delenv("MORPHEUS_B_API_KEYS", raising=False)
    with pytest.raises(SystemExit, match="give its API key"):
        main(["--a", "mock", "--b", "http://127.0.0.1:9"])
