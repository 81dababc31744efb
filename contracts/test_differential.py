"""Differential run (with --diff-against URL): the target and another one answer a seeded sequence alike."""

from __future__ import annotations

import pytest

from contracts import runtime
from contracts.client import Client
from contracts.diff import Side, _side, run_diff, sequence
from contracts.machine import discover_models

RUN = runtime.current()


@pytest.mark.contract(operations=("POST /api/v1/session/modelsession", "POST /api/v1/session/bidsession"))
def test_the_target_answers_like_the_other_one(request: pytest.FixtureRequest) -> None:
    other_url = request.config.option.diff_against
    if not other_url:
        pytest.skip("no --diff-against URL: the differential run compares this target with another one")
    other, stop = _side(other_url, request.config.option.diff_api_key or RUN.keys)
    try:
        mine = Side(Client(RUN.base_url, RUN.keys, RUN.settings.requests_per_second), RUN.keys)
        models = sorted(name for name in discover_models(RUN)[0] if not name.startswith("0x")) or ["mistral-31-24b"]
        steps = sequence(7, 60, models, min(len(mine.keys), len(other.keys)))
        differences = run_diff(mine, other, steps)
    finally:
        stop()
    assert not differences, f"{len(differences)} step(s) differ; the first:\n{differences[0]}"
