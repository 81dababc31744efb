"""The reports of a run that stops before its first test (a target that is not the gateway, a refused key, a
bad option): `--junitxml` and `--summary-json` are still written, each with the one-line reason, so a CI
job's "keep the report" step has a file that says why the run failed."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from contracts.api import RULES
from contracts.options import PACKAGE

CASE = "the run starts"  # the one failing case's name (classname: the suite's package)


def write_stop_reports(xmlpath: str | None, summary_json: str | None, reason: str) -> None:
    """Write the reports the run was asked for, each with one failure: `reason`."""
    if xmlpath:
        _write(xmlpath, junit(reason))
    if summary_json:
        _write(summary_json, json.dumps(summary(reason)))


def junit(reason: str) -> str:
    """A JUnit XML report of one failing case, in the shape pytest's own report has."""
    suites = ET.Element("testsuites", name="pytest tests")
    suite = ET.SubElement(suites, "testsuite", name="pytest", errors="0", failures="1", skipped="0", tests="1")
    suite.set("time", "0.000")
    suite.set("timestamp", datetime.now(UTC).isoformat())
    suite.set("hostname", socket.gethostname())
    case = ET.SubElement(suite, "testcase", classname=PACKAGE, name=CASE, time="0.000")
    ET.SubElement(case, "failure", message=reason).text = reason
    return '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(suites, encoding="unicode")


def summary(reason: str) -> dict[str, object]:
    """The `--summary-json` of a run that checked nothing: every rule NOT CHECKED, and why the run stopped."""
    line = "NOT CHECKED (the run stopped before its first test)"
    return {
        "rules": dict.fromkeys(RULES, line),
        "unchecked": [],
        "failed_run": True,
        "lines": [reason],
        "stopped": reason,
    }


def _write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
