"""The conformance suite from an install (the kit's wheel in a fresh virtualenv: tests/plugin/conftest.py),
run from empty folders as users run it: the example CI job's own steps, read from
`examples/contract-staging.yml`, against a mock the installed kit serves; and the replay command a
failure prints, followed from another empty folder. Neither leaves anything in the folder but what it
was asked to write."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from contracts.options import (
    as_checkout,
    declares_base_url,
    hypothesis_home,
    replay_command,
    runs_the_suite,
    settings_from,
)
from contracts.settings import ENV, MOCK_KEYS
from contracts.verify import settings_of
from tests.gallery.mutants import example_job_env
from tests.plugin.conftest import ROOT, Kit
from tests.served import serving

JOB = ROOT / "examples" / "contract-staging.yml"
_RUN = re.compile(r"^\s+(?:- )?run: (.+)$")
SUITE = str(ROOT / "contracts")
# The job's commands and MORPHEUS_* settings (cap 10, two keys) as they are, unpaced, with the least
# generation and no Schemathesis cases (every rule check still runs): this proves the commands from an
# install; tests/gallery runs the whole suite at all the job's settings (10 requests/s too) against
# every broken gateway, which at 10 requests/s takes two minutes a run.
LEAN = {
    ENV["rate_limit"]: "0",
    ENV["examples"]: "1",
    ENV["stateful_runs"]: "1",
    "PYTEST_ADDOPTS": "-k 'not test_conformance'",
}


def job_commands(path: Path = JOB) -> list[str]:
    """The shell commands of the example job's steps, in order."""
    return [match[1] for line in path.read_text().splitlines() if (match := _RUN.match(line))]


def shell(command: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def test_the_example_ci_job_passes_in_a_fresh_folder_against_a_served_mock(kit: Kit, tmp_path: Path) -> None:
    commands = job_commands()
    assert commands == ['pip install "$KIT"', "morpheus-contract --junitxml reports/contract.xml"]
    with serving("--log-level", "warning", program=[str(kit.bin / "morpheus-mock")]) as mock:
        target = {ENV["base_url"]: mock.url, ENV["api_keys"]: " ".join(MOCK_KEYS)}
        env = kit.environ(KIT=str(kit.wheel), **{**example_job_env(), **target, **LEAN})
        for command in commands:
            done = shell(command, tmp_path, env)
            assert done.returncode == 0, f"{command}:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert re.search(r"^  R7  passed +\(\d+ checked", done.stdout, re.MULTILINE), done.stdout[-3000:]
    report = (tmp_path / "reports" / "contract.xml").read_text()
    assert 'failures="0"' in report
    assert sorted(path.name for path in tmp_path.iterdir()) == ["reports"]  # no .hypothesis, no .pytest_cache
    # the ids of a checkout, whatever the path of the install: the same CI test history on every machine
    classnames = set(re.findall(r'classname="([^"]+)"', report))
    assert "contracts.test_auth" in classnames, classnames
    assert all(name.startswith("contracts.test_") for name in classnames), classnames
    assert "contracts/test_auth.py " in done.stdout  # pytest's progress line, relative to the user's folder
    assert str(kit.venv) not in done.stdout + report  # no machine-specific path of the install
    assert "PytestAssertRewriteWarning" not in done.stdout + done.stderr


def test_the_replay_command_a_failure_prints_reruns_it_from_another_folder(kit: Kit, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    command = [sys.executable, "-m", "tests.gallery.serve", "lower-case-bearer-accepted"]
    with subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as broken:
        assert broken.stdout is not None
        url = broken.stdout.readline().strip().strip('[]"')
        env = kit.environ(**{ENV["base_url"]: url, ENV["api_keys"]: " ".join(MOCK_KEYS), ENV["rate_limit"]: "0"})
        failed = shell("pytest --pyargs contracts -x -q -k test_auth", first, env)
        replay = re.search(r"^Replay: (.+)$", failed.stdout, re.MULTILINE)
        assert replay, failed.stdout[-3000:]
        again = shell(replay[1], second, env)
        broken.communicate("")
    (test,) = re.findall(r"^FAILED (\S+)", failed.stdout, re.MULTILINE)
    assert test.startswith("contracts/test_auth.py::test_bad_keys_are_refused["), test  # as from a checkout
    assert replay[1] == f"pytest --pyargs contracts -x -q -k {test.split('::')[-1].split('[')[0]}"
    assert again.returncode == 1
    assert re.findall(r"^FAILED (\S+)", again.stdout, re.MULTILINE) == [test]
    assert [path.name for path in (*first.iterdir(), *second.iterdir())] == []  # no litter


WRONG = "sk-Wrong2." + "0123456789abcdef" * 4
FORGED = "x=1%0AINFO:%20%20%20%20%20GET%20/forged%20200%20key=sk-Admin1%1b[2J"


def test_from_an_install_a_refused_key_or_a_bad_option_stops_the_run_with_one_line_and_a_report(
    kit: Kit, tmp_path: Path
) -> None:
    """Every key is tried before the first test, the reports of a run that stops early are still written, bad
    flags and variables are one line; the installed mock's log cannot be forged and its banner shows keys by
    prefix."""
    (models,) = kit.venv.glob("lib/python*/site-packages/mockserver/examples/models.json")  # --models' example
    with serving("--models", str(models), program=[str(kit.bin / "morpheus-mock")]) as mock:
        assert MOCK_KEYS[0] not in "".join(mock.banner)
        assert f"your key {MOCK_KEYS[0][:9]}…" in mock.banner[3]
        target = {ENV["base_url"]: mock.url, ENV["api_keys"]: f"{MOCK_KEYS[0]} {WRONG}"}
        reports = "--junitxml reports/contract.xml --summary-json reports/summary.json"
        stopped = shell(f"morpheus-contract {reports}", tmp_path, kit.environ(**target))
        # pytest finds the suite's conftest while it collects: the same stop, not a collection error
        pyargs = shell("pytest --pyargs contracts -q --junitxml reports/pyargs.xml", tmp_path, kit.environ(**target))
        requests.post(f"{mock.url}/api/v1/session/pingsession?{FORGED}", timeout=10)
        mock.process.terminate()
        mock.process.wait(timeout=15)
        log = mock.log.read_text()
    (line,) = [text for text in stopped.stderr.splitlines() if text.strip()]
    reason = 'the target refused API key 2 of 2 (sk-Wrong2…): {"detail":"Invalid API key"}.'
    assert stopped.returncode == 4, stopped.stderr
    assert line.startswith(f"ERROR: {reason}"), stopped.stderr
    assert "R7" not in stopped.stdout  # no test ran: nothing is blamed on the gateway
    (case,) = ET.parse(tmp_path / "reports" / "contract.xml").getroot().iter("testcase")
    failure = case.find("failure")
    assert (case.get("classname"), case.get("name")) == ("contracts", "the run starts")
    assert failure is not None
    assert str(failure.get("message")).startswith(reason)
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["failed_run"] is True
    assert summary["stopped"].startswith(reason)
    assert pyargs.returncode == 4, pyargs.stdout[-3000:]
    assert f"ERROR: {reason}" in pyargs.stdout
    assert "Traceback" not in pyargs.stdout + pyargs.stderr
    assert "error during collection" not in pyargs.stdout
    (case,) = ET.parse(tmp_path / "reports" / "pyargs.xml").getroot().iter("testcase")
    assert (case.get("classname"), case.get("name")) == ("contracts", "the run starts")
    assert WRONG not in stopped.stdout + stopped.stderr + (tmp_path / "reports" / "contract.xml").read_text()
    assert "?x=1\\nINFO:     GET /forged 200 key=sk-Admin1\\x1b[2J 401" in log, log
    assert not any(text.startswith("INFO:     GET /forged") for text in log.splitlines())
    for command, said in [
        ("morpheus-contract --rate-limit abc", "--rate-limit: expected a number of at least 0, got 'abc'"),
        ("morpheus-contract --bogus", "morpheus-contract: unrecognized arguments: --bogus (morpheus-contract"),
        ("morpheus-contract --base-url staging.example --api-key sk-x", "not a URL: add http:// or https://"),
    ]:
        done = shell(command, tmp_path, kit.environ())
        (line,) = [text for text in done.stderr.splitlines() if text.strip()]
        assert done.returncode == 4, (command, done.stdout, done.stderr)
        assert said in line, (command, line)
        assert done.stdout == "", (command, done.stdout)


@pytest.mark.parametrize("plugin", ["pytest-base-url's", "the suite's own"])
def test_the_suite_runs_beside_pytest_base_url(kit: Kit, tmp_path: Path, plugin: str) -> None:
    """pytest-base-url (pytest-playwright's, pytest-selenium's) declares --base-url too: every pytest run
    still starts, and the suite's target is the URL given, whichever plugin declared the option."""
    blocked = ["-p", "no:base_url"] if plugin == "the suite's own" else []
    env = kit.environ()
    assert shell(" ".join(["pytest", "--help", *blocked]), tmp_path, env).returncode == 0
    with socket.socket() as unused:  # a port nothing listens on: the suite must say it cannot reach it
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    command = ["morpheus-contract", *blocked, "--base-url", url, "--api-key", MOCK_KEYS[0], "-q"]
    done = shell(" ".join(command), tmp_path, env)
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()  # one line that says what is wrong, no traceback
    assert line.startswith(f"ERROR: cannot reach the target at {url}: ConnectionError"), line


class _Plugins:
    def __init__(self, loaded: bool = False, blocked: bool = False) -> None:
        self.loaded, self.blocked = loaded, blocked

    def has_plugin(self, name: str) -> bool:
        return self.loaded and name == "base_url"

    def is_blocked(self, name: str) -> bool:
        return self.blocked and name == "base_url"


@pytest.mark.parametrize(
    ("plugins", "environ", "expected"),
    [
        (_Plugins(loaded=True), {}, True),  # it loaded before the suite's plugin
        (_Plugins(), {}, True),  # installed, and loads after it
        (_Plugins(blocked=True), {}, False),  # -p no:base_url
        (_Plugins(), {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, False),
    ],
)
def test_the_suite_declares_base_url_unless_pytest_base_url_does(
    plugins: _Plugins, environ: dict[str, str], expected: bool
) -> None:
    assert declares_base_url(plugins, environ) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--pyargs", "contracts", "-k", "auth"], True),
        (["--pyargs", "contracts.test_auth::test_x"], True),
        ([SUITE, "-p", "no:cacheprovider"], True),
        ([f"{SUITE}/test_auth.py::test_x"], True),
        (["--pyargs", "contractsx"], False),
        (["tests/plugin", "-k", "contracts"], False),
        (["contracts"], False),  # without --pyargs: a folder of the user's own named contracts
    ],
)
def test_a_run_of_the_suite_is_told_from_its_command_line(
    args: list[str], expected: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a user's folder
    assert runs_the_suite(args, pyargs="--pyargs" in args) is expected


def test_the_replay_command_keeps_the_runs_options_but_its_keys_and_selection() -> None:
    kit = [
        SUITE,
        "-p",
        "no:cacheprovider",
        "--rootdir=.",
        "--base-url",
        "http://h",
        "--api-key",
        "sk-1",
        "-kauth",
        "--examples",
        "2",
    ]
    assert replay_command(kit, "contracts/test_auth.py::test_x[POST /a]") == (
        "morpheus-contract --base-url http://h --examples 2 -k test_x"
        "   (with your --api-key options: keys are never printed)"
    )
    plain = ["--pyargs", "contracts", "--api-key=sk-1", "--deselect", "contracts/a.py::b", "-x", "-k", "a or b"]
    assert replay_command(plain, "contracts/test_auth.py::test_y").startswith("pytest --pyargs contracts -x -k test_y")


@pytest.mark.parametrize(("value", "allowed"), [("1", True), ("yes", True), ("On", True), ("0", False), ("off", False)])
def test_a_switch_variable_reads_0_and_off_as_off(value: str, allowed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV["allow_spend"], value)
    monkeypatch.setenv(ENV["allow_chat"], value)
    settings = settings_from(_options(), ("R1",))  # type: ignore[arg-type]
    assert (settings.allow_spend, settings.allow_chat) == (allowed, allowed)  # `=0` never spends tokens
    monkeypatch.setenv(ENV["allow_spend"], "maybe")
    with pytest.raises(pytest.UsageError, match=r"^MORPHEUS_ALLOW_SPEND: expected 1/0, true/false, yes/no or on/off"):
        settings_from(_options(), ("R1",))  # type: ignore[arg-type]


def test_verify_reads_the_chat_switch_as_the_suite_does() -> None:
    args = SimpleNamespace(
        base_url=None, api_keys=[], max_sessions=None, rate_limit=None, allow_chat=False, max_chats=None
    )
    assert settings_of(args, {ENV["allow_chat"]: "0"}).allow_chat is False  # type: ignore[arg-type]
    assert settings_of(args, {ENV["allow_chat"]: "yes"}).allow_chat is True  # type: ignore[arg-type]


def test_a_diff_target_needs_a_scheme_too() -> None:
    with pytest.raises(pytest.UsageError, match=r"^--diff-against 'b\.example': not a URL: add http:// or https://"):
        settings_from(_options(diff_against="b.example"), ("R1",))  # type: ignore[arg-type]
    assert settings_from(_options(diff_against="mock"), ("R1",)).base_url is None  # type: ignore[arg-type]
    assert settings_from(_options(diff_against="http://b"), ("R1",)).base_url is None  # type: ignore[arg-type]


def test_reports_leave_the_folder_of_the_install_out_of_every_path(tmp_path: Path) -> None:
    installed = Path(SUITE).parent
    text = f"{installed}/contracts/test_auth.py:62: skipped; ./x"
    assert as_checkout(text, tmp_path) == "contracts/test_auth.py:62: skipped; ./x"
    relative = os.path.relpath(installed, tmp_path)
    assert as_checkout(f"{relative}/hypothesis/core.py:120: Error", tmp_path) == "hypothesis/core.py:120: Error"
    assert as_checkout("./contracts/a.py", installed) == "./contracts/a.py"  # run from the folder itself


def test_hypothesis_keeps_its_caches_in_the_users_cache_folder() -> None:
    assert hypothesis_home({"HYPOTHESIS_STORAGE_DIRECTORY": "/x"}) == Path("/x")
    assert hypothesis_home({"XDG_CACHE_HOME": "/c"}) == Path("/c/morpheus-contract/hypothesis")
    assert hypothesis_home({}) == Path.home() / ".cache" / "morpheus-contract" / "hypothesis"


def _options(**given: object) -> SimpleNamespace:
    unset = dict.fromkeys(("base_url", "allow_spend", "max_sessions", "rate_limit", "session_duration"))
    unset |= dict.fromkeys(("examples", "stateful_runs", "concurrency", "allow_chat", "max_chats"))
    lists: dict[str, list[str]] = {"api_keys": [], "bid_ids": [], "skip_rules": []}
    return SimpleNamespace(option=SimpleNamespace(**{**unset, **lists, **given}))


def test_an_option_wins_over_its_variable_which_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV["examples"], "7")
    monkeypatch.setenv(ENV["rate_limit"], "2.5")
    monkeypatch.setenv(ENV["allow_spend"], "1")
    settings = settings_from(_options(stateful_runs="3", examples=None), ("R1",))  # type: ignore[arg-type]
    assert (settings.examples, settings.rate_limit, settings.stateful_runs) == (7, 2.5, 3)
    assert (settings.concurrency, settings.session_duration, settings.allow_spend) == (8, 300, True)
    assert settings_from(_options(examples="4"), ("R1",)).examples == 4  # type: ignore[arg-type]
    given = settings_from(_options(base_url="https://staging.example"), ("R1",))  # type: ignore[arg-type]
    assert given.base_url == "https://staging.example"


def test_a_bad_variable_is_one_line_for_a_contract_run_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV["max_sessions"], "ten")
    with pytest.raises(
        pytest.UsageError, match=r"^MORPHEUS_MAX_SESSIONS: expected a whole number of at least 0, got 'ten'$"
    ):
        settings_from(_options(), ("R1",))  # type: ignore[arg-type]
    monkeypatch.setenv(ENV["max_sessions"], "1")
    monkeypatch.setenv(ENV["rate_limit"], "fast")
    with pytest.raises(pytest.UsageError, match=r"^MORPHEUS_RATE_LIMIT: expected a number of at least 0, got 'fast'$"):
        settings_from(_options(), ("R1",))  # type: ignore[arg-type]
    with pytest.raises(pytest.UsageError, match="R9: not a session rule"):
        settings_from(_options(skip_rules=["r9"]), ("R1",))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dest", "value", "expected"),
    [
        ("rate_limit", "abc", ": expected a number of at least 0, got 'abc'"),
        ("rate_limit", "nan", ": expected a number of at least 0, got 'nan'"),
        ("max_sessions", "-1", ": expected a whole number of at least 0, got '-1'"),
        ("max_chats", "1.5", ": expected a whole number of at least 0, got '1.5'"),
        ("examples", "0", ": expected a whole number of at least 1, got '0'"),
        ("concurrency", "-3", ": expected a whole number of at least 1, got '-3'"),
        ("base_url", "staging.example", " 'staging.example': not a URL: add http:// or https://"),
        ("base_url", "ftp://staging.example", " 'ftp://staging.example': not a URL: add http:// or https://"),
    ],
)
def test_a_bad_flag_and_its_variable_get_the_same_one_line(
    dest: str, value: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = "--" + dest.replace("_", "-")
    with pytest.raises(pytest.UsageError) as from_flag:
        settings_from(_options(**{dest: value}), ("R1",))  # type: ignore[arg-type]
    monkeypatch.setenv(ENV[dest], value)
    with pytest.raises(pytest.UsageError) as from_variable:
        settings_from(_options(), ("R1",))  # type: ignore[arg-type]
    assert str(from_flag.value).startswith(flag + expected)
    assert str(from_variable.value) == ENV[dest] + str(from_flag.value).removeprefix(flag)
