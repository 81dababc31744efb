"""The differential run finds no difference between two mocks, and the first difference with a broken one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from contracts.client import Client
from contracts.diff import Side, run_diff, sequence
from contracts.settings import MOCK_KEYS
from mockserver.config import Config
from mockserver.web.app import create_app
from tests.gallery.variants import VARIANTS
from tests.live import LiveServer

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


def test_make_diff_compares_two_in_process_mocks() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "contracts.diff", "--a", "mock", "--b", "mock", "--steps", "20"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    assert "no difference in 20 steps (seed 7)" in run.stdout
