"""The contract suite's pytest plugin: options, the run (target, probe, controls) and the fixtures tests use.

Run it as `morpheus-contract [--base-url URL --api-key KEY ...]` or `pytest --pyargs contracts ...`. The
options are declared by the `morpheus_contract` entry-point plugin (`contracts/options.py`), so pytest knows
them before it finds this file. The run is built once at configure time (never at a test module's import)
and kept in pytest's stash; the hooks live in `contracts/plugin.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from contracts.api import RULES
from contracts.budget import Budget
from contracts.client import Client
from contracts.early import write_stop_reports
from contracts.options import PACKAGE, SESSION_STARTED, SUITE, as_checkout, hypothesis_home, settings_from
from contracts.plugin import RUN, ContractPlugin
from contracts.runtime import Run
from contracts.safety import cap_share
from contracts.settings import Settings, key_share
from contracts.summary import Summary
from contracts.target import open_run, probe

PROFILE = "morpheus-contract"  # the generated cases' Hypothesis settings (--examples)


STOPPED = pytest.StashKey[str]()  # why a run that found this file while collecting stops before its first test


def pytest_configure(config: pytest.Config) -> None:
    try:
        _configure(config)
    except pytest.UsageError as error:  # the run stops before its first test: its reports still say why
        if config.stash.get(SESSION_STARTED, False):  # `pytest --pyargs contracts`: pytest is collecting, where
            config.stash[STOPPED] = str(error)  # a raise would read as a collection error with a traceback
            return
        if not hasattr(config, "workerinput"):
            _write_stop_reports(config, str(error))
        raise


def pytest_collection_modifyitems(config: pytest.Config) -> None:
    if STOPPED in config.stash:  # the collection is over: stop there, with the one line
        pytest.exit(f"ERROR: {config.stash[STOPPED]}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if STOPPED in config.stash:  # after pytest's own JUnit report (written at session finish, with no test)
        _write_stop_reports(config, config.stash[STOPPED])


def _write_stop_reports(config: pytest.Config, reason: str) -> None:
    write_stop_reports(getattr(config.option, "xmlpath", None), config.option.summary_json, reason)


def _configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "contract(rules, operations, sessions, share, more, needs): the rules and operations a contract test "
        "covers, the sessions the session budget reserves for it (with share=RANK: at most, from what the fixed "
        "reservations leave; more=N: N more of what they leave, before any share), and what the target must "
        "offer for it (bids, time, two keys, two models)",
    )
    settings = settings_from(config, RULES)
    import hypothesis  # here, not at the top: `python -m contracts` imports this module before pytest starts
    import hypothesis.configuration

    previous = hypothesis.settings.get_current_profile_name()  # put back at unconfigure (plugin.py)
    # No example database: a run against a URL leaves no .hypothesis/ in the user's folder, and replays
    # need none (every run is derandomized).
    hypothesis.settings.register_profile(PROFILE, max_examples=settings.examples, database=None)
    hypothesis.settings.load_profile(PROFILE)
    hypothesis.configuration.set_hypothesis_home_dir(hypothesis_home())  # Hypothesis' caches: not in the user's folder
    if not settings.in_process and not settings.api_keys:
        raise pytest.UsageError("--base-url needs at least one --api-key (or MORPHEUS_API_KEYS)")
    plugin = ContractPlugin(config, Summary(settings), settings.api_keys, hypothesis_profile=previous)
    config.pluginmanager.register(plugin, "morpheus-contract")
    if _is_xdist_controller(config):  # the workers run the tests, each with its own share of keys and cap
        count = int(config.option.numprocesses)
        for index in range(count):  # refuse a pool or cap too small here, before any worker starts
            _share(settings, index, count)
        if not settings.in_process:  # and a target or a key that would stop every worker, with one line
            probe(Client(settings.base_url or "", settings.api_keys, settings.requests_per_second), settings.api_keys)
        return
    index, count = _worker(config)
    # Parallel workers against one target share its clock: one worker moving it would expire the others'
    # sessions mid-check, so none of them moves it (in-process, every worker has a mock of its own).
    config.stash[RUN] = open_run(_share(settings, index, count), may_move_time=settings.in_process or count == 1)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module:
    """The suite's test modules have the ids they have in a checkout (`contracts/test_auth.py`, JUnit classname
    `contracts.test_auth`) wherever the kit is installed: pytest would name them by their path from its rootdir
    (`.venv/lib/python3.11/site-packages/contracts/...`), which changes from machine to machine."""
    nodeid = f"{PACKAGE}/{module_path.relative_to(SUITE).as_posix()}"
    return pytest.Module.from_parent(parent, path=module_path, nodeid=nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A report names the suite's files as a checkout does, never by the path of the install."""
    report: pytest.TestReport = yield
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        path, line, reason = report.longrepr
        report.longrepr = (as_checkout(path), line, reason)
    elif report.longrepr is not None:
        report.longrepr = as_checkout(str(report.longrepr))
    return report


def _share(settings: Settings, index: int, count: int) -> Settings:
    """One parallel worker's settings: its share of the key pool and of the session cap (against a URL;
    in-process, every worker has a mock of its own)."""
    if settings.in_process:
        return settings
    try:
        keys = key_share(settings.api_keys, index, count)
        cap = cap_share(settings.session_cap, index, count)
        chats = cap_share(settings.chat_cap, index, count)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    return replace(settings, api_keys=keys, max_sessions=cap or 0, max_chats=chats or 0)


def _is_xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def _worker(config: pytest.Config) -> tuple[int, int]:
    """This process's index among the pytest-xdist workers, and their count (0, 1 without xdist)."""
    worker = getattr(config, "workerinput", None)
    if worker is None:
        return 0, 1
    return int(str(worker["workerid"]).removeprefix("gw")), int(worker["workercount"])


@pytest.fixture(scope="session")
def run(request: pytest.FixtureRequest) -> Run:
    """The contract run: settings, target, client, ledger, models and controls."""
    return request.config.stash[RUN]


@pytest.fixture
def check(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """`check("R2")` records that this test exercised R2; only such tests make a rule "passed"."""

    def checked(rule: str) -> None:
        if ("checked", rule) not in request.node.user_properties:
            request.node.user_properties.append(("checked", rule))

    return checked


@pytest.fixture
def budget(request: pytest.FixtureRequest, run: Run) -> Budget:
    return Budget(run, request.node.nodeid)
