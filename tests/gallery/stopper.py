"""A pytest plugin for the mutants run: stop a variant's run as soon as it is caught.

`GALLERY_STOP_ON=R2` stops after the first failing test that covers R2 (so the summary names the rule);
`GALLERY_STOP_ON=any` after the first failing test; unset or empty: the run goes to the end.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

STOP_ON = "GALLERY_STOP_ON"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    wanted = os.environ.get(STOP_ON, "")
    if report.failed and wanted and (wanted == "any" or wanted in _rules(item)):
        item.session.shouldfail = f"the variant is caught ({STOP_ON}={wanted})"  # as -x does
    return report


def _rules(item: pytest.Item) -> tuple[str, ...]:
    marker = item.get_closest_marker("contract")
    return tuple(marker.kwargs.get("rules", ())) if marker is not None else ()
