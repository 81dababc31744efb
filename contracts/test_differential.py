"""Differential run (with --diff-against URL): the target and another one answer a seeded sequence alike."""

from __future__ import annotations

import pytest

from contracts.api import BID_SESSION, MODEL_SESSION
from contracts.client import Client
from contracts.diff import Side, _side, run_diff, sequence
from contracts.runtime import DEFAULT_MODEL_NAME, Run


@pytest.mark.contract(operations=(MODEL_SESSION.label, BID_SESSION.label))
def test_the_target_answers_like_the_other_one(request: pytest.FixtureRequest, run: Run) -> None:
    other_url = request.config.option.diff_against
    if not other_url:
        pytest.skip("no --diff-against URL: the differential run compares this target with another one")
    other, stop = _side(other_url, request.config.option.diff_api_key or run.keys)
    try:
        mine = Side(Client(run.base_url, run.keys, run.settings.requests_per_second), run.keys)
        steps = sequence(7, 60, run.model_names or [DEFAULT_MODEL_NAME], min(len(mine.keys), len(other.keys)))
        differences = run_diff(mine, other, steps)
    finally:
        stop()
    assert not differences, f"{len(differences)} step(s) differ; the first:\n{differences[0]}"
