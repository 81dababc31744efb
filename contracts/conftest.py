"""The contract suite's pytest plugin: target selection, safety, the per-rule summary, key redaction.

Run it as `pytest contracts [--base-url URL --api-key KEY ...]` or `python -m contracts`.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import pytest
import requests

from contracts import runtime
from contracts.client import Client
from contracts.inprocess import start_mock
from contracts.redact import redact
from contracts.safety import Ledger, close_all
from contracts.settings import MOCK_KEYS, Settings, env_default, key_share, split_keys
from contracts.summary import Summary

SUMMARY = Summary()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("contracts", "Morpheus session-API contract")
    add = group.addoption
    add(
        "--base-url",
        default=env_default("base_url"),
        help="the target (env MORPHEUS_BASE_URL); none: the in-process mock",
    )
    add(
        "--api-key",
        action="append",
        dest="api_keys",
        default=[],
        help="an API key of the target; twice for R7 (env MORPHEUS_API_KEYS)",
    )
    add(
        "--allow-spend",
        action="store_true",
        default=bool(env_default("allow_spend")),
        help="also call approve (spends tokens)",
    )
    add(
        "--max-sessions",
        type=int,
        default=_int("max_sessions"),
        help="cap on sessions a run opens (default 20 against a URL; 0 = none)",
    )
    add(
        "--rate-limit",
        type=float,
        default=_float("rate_limit"),
        help="requests per second (default 20 against a URL; 0 = none)",
    )
    add(
        "--session-duration",
        type=int,
        default=_int("session_duration") or 300,
        help="sessionDuration of the sessions the run opens",
    )
    add(
        "--bid-id",
        action="append",
        dest="bid_ids",
        default=[],
        help="a bid id the run may open sessions on (env MORPHEUS_BID_IDS)",
    )
    add("--examples", type=int, default=_int("examples") or 30, help="generated examples per operation")
    add("--stateful-runs", type=int, default=_int("stateful_runs") or 20, help="state-machine runs per key set")
    add("--concurrency", type=int, default=_int("concurrency") or 8, help="parallel creates in the R8 contract")
    add("--diff-against", default=None, help="also send a seeded request sequence to this URL and compare (or 'mock')")
    add("--diff-api-key", action="append", default=[], help="key(s) of the --diff-against target (default: the run's)")


def _int(name: str) -> int | None:
    value = env_default(name)
    return None if value is None else int(value)


def _float(name: str) -> float | None:
    value = env_default(name)
    return None if value is None else float(value)


def settings_from(config: pytest.Config) -> Settings:
    option = config.option
    return Settings(
        base_url=option.base_url or None,
        api_keys=tuple(option.api_keys) or split_keys(env_default("api_keys")),
        allow_spend=option.allow_spend,
        max_sessions=option.max_sessions,
        rate_limit=option.rate_limit,
        session_duration=option.session_duration,
        bid_ids=tuple(option.bid_ids) or split_keys(env_default("bid_ids")),
        examples=option.examples,
        stateful_runs=option.stateful_runs,
        concurrency=option.concurrency,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "contract(rules, operations): the rules and operations a contract test covers")
    settings = settings_from(config)
    if not settings.in_process and not settings.api_keys:
        raise pytest.UsageError("--base-url needs at least one --api-key (or MORPHEUS_API_KEYS)")
    SUMMARY.settings = settings
    if _is_xdist_controller(config):
        return  # the workers run the tests, each against the target with its own share of the keys
    if not settings.in_process:  # in-process, every worker has a mock of its own
        try:
            settings = replace(settings, api_keys=key_share(settings.api_keys, *_worker(config)))
        except ValueError as error:
            raise pytest.UsageError(str(error)) from None
    runtime.begin(open_run(settings))


def _is_xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def _worker(config: pytest.Config) -> tuple[int, int]:
    """This process's index among the pytest-xdist workers, and their count (0, 1 without xdist)."""
    worker = getattr(config, "workerinput", None)
    if worker is None:
        return 0, 1
    return int(str(worker["workerid"]).removeprefix("gw")), int(worker["workercount"])


def open_run(settings: Settings) -> runtime.Run:
    """Start (or reach) the target, check that it serves the session API, and learn what it lets us control."""
    stop: Any = lambda: None  # noqa: E731
    keys, base_url = settings.api_keys, settings.base_url
    if settings.in_process:
        server = start_mock(MOCK_KEYS)
        keys, base_url, stop = MOCK_KEYS, server.url, server.stop
    assert base_url is not None
    client = Client(base_url, keys, settings.requests_per_second)
    ledger = Ledger(settings.session_cap)
    client.session.listeners.append(ledger.observe)
    try:
        probe(client, keys[0])
        controls = _admin_answers(client, "/__admin/clock"), _admin_answers(client, "/__admin/faults")
    except BaseException:
        stop()
        raise
    return runtime.Run(settings, base_url, keys, client, ledger, controls[0], controls[1], stop)


def probe(client: Client, key: str) -> None:
    """Fail fast, with one clear message, when the target is not the session API."""
    url = f"{client.base_url}/api/v1/session/pingsession"
    try:
        response = client.post("/api/v1/session/pingsession", key=key)
    except requests.RequestException as error:
        raise pytest.UsageError(
            f"cannot reach the target at {client.base_url}: {type(error).__name__}: {redact(str(error), [key])}"
        ) from None
    if response.status_code == 404:
        raise pytest.UsageError(
            f"the target has no session API: POST {url} answered 404 {response.text[:100]}. "
            "Check --base-url (the gateway removed /api/v1/session/* in v1.15.0)."
        )
    if response.status_code == 401:
        raise pytest.UsageError(f"the target refused the first API key ({key[:9]}…): {response.text[:200]}")


def _admin_answers(client: Client, path: str) -> bool:
    response = client.get(path)
    return response.status_code == 200 and response.headers.get("content-type", "").startswith("application/json")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag Schemathesis' generated tests with their operation, and tell the summary what each test covers."""
    for item in items:
        if item.name.startswith("test_conformance[") and not item.get_closest_marker("contract"):
            item.add_marker(pytest.mark.contract(rules=(), operations=(item.name.split("[", 1)[1].rstrip("]"),)))
        marker = item.get_closest_marker("contract")
        if marker is not None:
            rules, operations = tuple(marker.kwargs.get("rules", ())), tuple(marker.kwargs.get("operations", ()))
            SUMMARY.describe(item.nodeid, rules, operations)
            item.user_properties.append(("contract", json.dumps({"rules": rules, "operations": operations})))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Redact keys in every report before any reporter (terminal, JUnit XML) sees it; feed the summary."""
    keys = tuple(runtime._CURRENT[-1].keys if runtime._CURRENT else ()) + (
        SUMMARY.settings.api_keys if SUMMARY.settings else ()
    )
    if isinstance(report.longrepr, tuple):
        path, line, message = report.longrepr
        report.longrepr = (path, line, redact(message, keys))
    elif report.longrepr is not None:
        report.longrepr = redact(str(report.longrepr), keys)
    SUMMARY.record(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    current = runtime._CURRENT[-1] if runtime._CURRENT else None
    if current is None:
        return
    problems = close_all(current.client, current.ledger, current.keys)
    SUMMARY.add_worker(current.report(problems))
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: hand the controller what this worker did
        workeroutput["contract"] = json.dumps(current.report(problems))


def pytest_testnodedown(node: Any, error: Any) -> None:
    """The pytest-xdist controller collects each worker's report for the summary."""
    report = getattr(node, "workeroutput", {}).get("contract")
    if report:
        SUMMARY.add_worker(json.loads(report))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARY.settings is None or not SUMMARY.workers:
        return
    for line in SUMMARY.lines(time.monotonic() - SUMMARY.started):
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    finished = runtime.end()
    if finished is not None:
        finished.stop()
