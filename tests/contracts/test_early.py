"""A run that stops before its first test still writes the reports it was asked for (contracts/early.py)."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from contracts.conftest import (
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_unconfigure,
)
from contracts.options import SESSION_STARTED, SUITE

REASON = "the target refused API key 2 of 2 (sk-Wrong2…): Invalid API key. Check --api-key / MORPHEUS_API_KEYS."


class _Stopping(SimpleNamespace):
    """A config whose run stops at once, as a refused key stops it."""

    def __init__(self, **fields: object) -> None:
        super().__init__(**fields)
        self.stash = pytest.Stash()

    def addinivalue_line(self, name: str, line: str) -> None:
        raise pytest.UsageError(REASON)


def test_an_early_stop_writes_both_reports_with_the_one_line_reason(tmp_path: Path) -> None:
    xml, summary = tmp_path / "reports" / "contract.xml", tmp_path / "summary.json"
    config = _Stopping(option=SimpleNamespace(xmlpath=str(xml), summary_json=str(summary)))
    with pytest.raises(pytest.UsageError, match="refused API key 2"):
        pytest_configure(config)  # type: ignore[arg-type]
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
    (case,) = suite.iter("testcase")
    failure = case.find("failure")
    assert (case.get("classname"), case.get("name")) == ("contracts", "the run starts")
    assert failure is not None
    assert (failure.get("message"), failure.text) == (REASON, REASON)
    written = json.loads(summary.read_text())
    assert (written["failed_run"], written["stopped"], written["lines"]) == (True, REASON, [REASON])
    assert written["rules"]["R7"] == "NOT CHECKED (the run stopped before its first test)"


def test_a_parallel_worker_leaves_the_reports_to_the_controller(tmp_path: Path) -> None:
    xml = tmp_path / "contract.xml"
    config = _Stopping(option=SimpleNamespace(xmlpath=str(xml), summary_json=None), workerinput={})
    with pytest.raises(pytest.UsageError):
        pytest_configure(config)  # type: ignore[arg-type]
    assert not xml.exists()


def test_a_run_asked_for_no_report_writes_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pytest.UsageError):
        pytest_configure(_Stopping(option=SimpleNamespace(xmlpath=None, summary_json=None)))  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_finds_the_suite_while_collecting_stops_after_the_collection(tmp_path: Path) -> None:
    """`pytest --pyargs contracts`: pytest loads the suite's conftest while it collects, where a raise would be a
    collection error with a traceback; the run stops once the collection ends, with the one line and exit 4,
    and the reports are written after pytest's own (which has no test)."""
    xml = tmp_path / "contract.xml"
    config = _Stopping(option=SimpleNamespace(xmlpath=str(xml), summary_json=None))
    config.stash[SESSION_STARTED] = True
    pytest_configure(config)  # type: ignore[arg-type]
    assert not xml.exists()
    with pytest.raises(pytest.exit.Exception, match=f"^ERROR: {re.escape(REASON)}$") as stopped:
        pytest_collection_modifyitems(config)  # type: ignore[arg-type]
    assert stopped.value.returncode == pytest.ExitCode.USAGE_ERROR
    xml.write_text("<testsuites/>")  # pytest's junitxml, written at session finish
    pytest_unconfigure(config)  # type: ignore[arg-type]
    (case,) = ET.parse(xml).getroot().iter("testcase")
    assert case.get("name") == "the run starts"


def test_a_run_that_did_not_stop_collects_and_ends_as_usual(tmp_path: Path) -> None:
    config = _Stopping(option=SimpleNamespace(xmlpath=str(tmp_path / "contract.xml"), summary_json=None))
    pytest_collection_modifyitems(config)  # type: ignore[arg-type]
    pytest_unconfigure(config)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_failure_report_names_the_suite_as_a_checkout_does() -> None:
    """A failed test's traceback names `contracts/test_auth.py`, never the folder the kit is installed in."""
    wrapper = pytest_runtest_makereport(None, None)  # type: ignore[arg-type]
    next(wrapper)
    failed = SimpleNamespace(longrepr=f"{SUITE}{os.sep}test_auth.py:62: AssertionError")
    with pytest.raises(StopIteration) as done:
        wrapper.send(failed)
    assert done.value.value.longrepr == "contracts/test_auth.py:62: AssertionError"
