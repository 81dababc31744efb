"""The contract suite run as a user runs it: it passes against the mock, in-process and served (at its
default URL settings), never calls an unchecked rule "passed", fails a run that left a rule the target
allows unchecked, stops with one line against a target that is not the gateway, restores the mock's
clock and never prints a key. (Broken gateways: tests/gallery.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from contracts.api import CHAT_RULES, RULES
from contracts.chat_budget import NOT_ALLOWED
from contracts.settings import ENV, MOCK_KEYS
from mockserver.config import Config
from mockserver.web.app import create_app
from tests.gallery.mutants import example_job_env
from tests.live import LiveServer
from tests.served import Served, serving

QUICK = ["--examples", "10", "--stateful-runs", "15", "-q", "-p", "no:cacheprovider"]
# The rule checks alone, unpaced: enough to show what the summary says of each rule.
RULE_SCENARIOS = ["-k", "test_rule_scenarios or test_concurrency", "--rate-limit", "0", "-q", "-p", "no:cacheprovider"]


def _contract(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "contracts", *args]
    environ = {**os.environ, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=environ)


def _keys(*keys: str) -> list[str]:
    return [part for key in keys for part in ("--api-key", key)]


def _rule_lines(output: str) -> dict[str, str]:
    return dict(re.findall(r"^  ([RC]\d+)  (.*)$", output, re.MULTILINE))


def _never_passed_unchecked(output: str) -> None:
    """Every rule reads passed only with at least one check behind it."""
    for rule, line in _rule_lines(output).items():
        if line.startswith("passed"):
            assert re.search(r"\b[1-9]\d* checked", line), f"{rule}: {line}"


@pytest.fixture
def served_mock() -> Iterator[Served]:
    """`python -m mockserver` in its own process, on a free loopback port."""
    with serving("--log-level", "warning", keys=MOCK_KEYS) as mock:
        yield mock


def test_the_suite_passes_against_the_in_process_mock() -> None:
    run = _contract(*QUICK)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "target: the in-process mock" in run.stdout
    for rule in RULES:
        assert re.search(rf"{rule}\s+passed", run.stdout), rule
    _never_passed_unchecked(run.stdout)
    assert re.search(r"wall time: \d+\.\d s", run.stdout)
    assert MOCK_KEYS[0] not in run.stdout + run.stderr


def test_the_suite_passes_against_a_served_mock_at_its_default_url_settings(
    served_mock: Served, tmp_path: Path
) -> None:
    """One key and a bid id, cap 20, 20 requests/s: every rule the target allows is checked (R7 needs two
    keys), the cap holds, the admin clock is put back, and no key appears in full in the output or the JUnit XML."""
    junit = tmp_path / "contract.xml"
    started = time.monotonic()
    bid = ("--bid-id", "0x" + "b1" * 32)  # against a URL the run opens bid sessions only on a given bid id
    run = _contract("--base-url", served_mock.url, *_keys(MOCK_KEYS[0]), *bid, "-q", f"--junitxml={junit}")
    assert run.returncode == 0, run.stdout[-3000:]
    assert time.monotonic() - started < 120
    rules = _rule_lines(run.stdout)
    assert all(rules[rule].startswith("passed") for rule in RULES if rule not in ("R7", *CHAT_RULES)), rules
    assert rules["R7"].startswith("NOT CHECKED (R7 (keys are isolated) needs two API keys"), rules["R7"]
    assert all(rules[rule] == f"NOT CHECKED ({NOT_ALLOWED})" for rule in CHAT_RULES), rules  # and the run passed
    assert f"chat: none sent ({NOT_ALLOWED})" in run.stdout
    _never_passed_unchecked(run.stdout)
    spent = re.search(r"safety: (\d+) sessions opened \(cap 20\)", run.stdout)
    assert spent is not None, run.stdout[-800:]
    assert int(spent[1]) <= 20
    assert re.search(r"requests sent: \d+   wall time: \d+\.\d s", run.stdout)
    clock = requests.get(f"{served_mock.url}/__admin/clock", timeout=5).json()["now"]
    assert abs(clock - time.time()) < 30, "the suite must put the mock's clock back (R6 moved it)"
    assert MOCK_KEYS[0] not in run.stdout + run.stderr + junit.read_text()


def test_with_allow_chat_the_chat_rules_pass_over_http_at_the_ci_jobs_settings(served_mock: Served) -> None:
    """The example CI job with chat turned on (cap raised by the 4 sessions chat opens): the chat
    scenarios, the session-rule scenarios and R8 all fit the cap, C1-C6 pass, and chat is counted."""
    env = {**example_job_env(), ENV["allow_chat"]: "1", ENV["max_sessions"]: "14", ENV["base_url"]: served_mock.url}
    env[ENV["api_keys"]] = " ".join(MOCK_KEYS)
    run = _contract("-k", "test_chat_rules or test_rule_scenarios or test_concurrency", "-q", env=env)
    assert run.returncode == 0, run.stdout[-3000:]
    rules = _rule_lines(run.stdout)
    assert all(rules[rule].startswith("passed") for rule in CHAT_RULES), rules
    assert all(rules[rule].startswith("passed") for rule in ("R1", "R2", "R4", "R5", "R6", "R7", "R8")), rules
    spent = re.search(r"safety: (\d+) sessions opened \(cap 14\)", run.stdout)
    assert spent is not None, run.stdout[-800:]
    assert int(spent[1]) <= 14
    chats = re.search(r"chat: (\d+) chat/embeddings requests \(cap 30\)", run.stdout)
    assert chats is not None, run.stdout[-800:]
    assert 0 < int(chats[1]) <= 30


def test_a_rule_without_an_executed_check_never_reads_passed() -> None:
    """A gateway without the mock's admin API: no bids, no clock, one key. R3, R6 and R7 cannot be
    checked, say so with the reason, and (the target not allowing them) do not fail the run."""
    with serving("--log-level", "warning", keys=MOCK_KEYS, admin=False) as plain:
        run = _contract("--base-url", plain.url, *_keys(MOCK_KEYS[0]), *RULE_SCENARIOS)
    assert run.returncode == 0, run.stdout[-3000:]
    rules = _rule_lines(run.stdout)
    assert rules["R3"] == "NOT CHECKED (no bid ids: pass --bid-id to let the run open bid sessions)", rules
    assert rules["R6"].startswith("NOT CHECKED (R6 (expiry) needs the mock's admin clock"), rules
    assert rules["R7"].startswith("NOT CHECKED (R7 (keys are isolated) needs two API keys"), rules
    assert "time control (R6): no - the target has no admin clock" in run.stdout
    _never_passed_unchecked(run.stdout)


def test_a_rule_the_target_allows_left_unchecked_fails_the_run_unless_skipped(served_mock: Served) -> None:
    """A cap of 4 sessions cannot prove every rule: the run fails and names them; --skip-rule (or its
    environment variable) accepts them."""
    target = ["--base-url", served_mock.url, *_keys(*MOCK_KEYS), "--max-sessions", "4", *RULE_SCENARIOS]
    run = _contract(*target)
    assert run.returncode == 1, run.stdout[-3000:]
    _never_passed_unchecked(run.stdout)
    unchecked = [rule for rule, line in _rule_lines(run.stdout).items() if line.startswith("NOT CHECKED")]
    assert unchecked, run.stdout[-3000:]
    assert "FAILED: not checked although the target allows it: " + unchecked[0] in run.stdout
    assert "failed" not in run.stdout.splitlines()[-1]  # no test failed: the unchecked rules failed the run
    accepted = _contract(*target, env={"MORPHEUS_SKIP_RULES": " ".join(unchecked)})
    assert accepted.returncode == 0, accepted.stdout[-3000:]
    for rule in unchecked:
        assert _rule_lines(accepted.stdout)[rule] == "NOT CHECKED (skipped by --skip-rule)"
    assert "FAILED: not checked" not in accepted.stdout


def _not_the_gateway(status: int, html: bool) -> Starlette:
    def answer(request: object) -> Response:
        if html:
            return HTMLResponse("<html><body>Welcome to nginx!</body></html>", status_code=status)
        return JSONResponse({"error": "not implemented"}, status_code=status)

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])


@pytest.mark.parametrize(("status", "html"), [(404, False), (200, True), (501, False)])
def test_a_target_that_is_not_the_gateway_stops_the_run_with_one_line(status: int, html: bool) -> None:
    with LiveServer(_not_the_gateway(status, html)) as server:
        run = _contract("--base-url", server.url, *_keys(MOCK_KEYS[0]), "-q")
    assert run.returncode == 4, run.stdout + run.stderr
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, run.stderr
    expected = "the target has no session API: POST" if status == 404 else "the target does not answer like the gateway"
    assert expected in errors[0]
    assert "Traceback" not in run.stdout + run.stderr
    assert MOCK_KEYS[0] not in run.stdout + run.stderr


POOL = (*MOCK_KEYS, "sk-Contr3." + "0123456789abcdef" * 4, "sk-Contr4." + "0123456789abcdef" * 4)


def test_a_refused_key_stops_a_parallel_run_before_any_worker_starts(tmp_path: Path) -> None:
    wrong = "sk-Wrong4." + "0123456789abcdef" * 4
    report = tmp_path / "contract.xml"
    with LiveServer(create_app(Config(keys=POOL[:3]))) as server:
        run = _contract("--base-url", server.url, *_keys(*POOL[:3], wrong), "-n", "2", f"--junitxml={report}")
    assert run.returncode == 4, run.stdout[-2000:] + run.stderr[-2000:]
    (line,) = [text for text in run.stderr.splitlines() if text.strip()]
    assert line.startswith("ERROR: the target refused API key 4 of 4 (sk-Wrong4…)"), line
    assert 'name="the run starts"' in report.read_text()


def test_in_process_a_parallel_worker_starts_a_mock_of_its_own() -> None:
    """With no URL the controller has no target to try: a worker starts and probes a mock of its own."""
    run = _contract("-n", "1", "-k", "test_the_models_list_needs_no_key", "-q")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout


def test_parallel_workers_each_take_their_share_of_the_key_pool() -> None:
    """pytest -n 2 against one served mock: each worker runs the whole suite with two keys of its own;
    the summary is printed once, each key named once."""
    with LiveServer(create_app(Config(keys=POOL, admin=True))) as server:
        run = _contract(
            "--base-url", server.url, *_keys(*POOL), "--rate-limit", "0", "--max-sessions", "0", "-n", "2", *QUICK
        )
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.stdout.count("Morpheus session-API contract") == 1
    assert "workers: 2" in run.stdout
    assert re.search(r"R7\s+passed", run.stdout)
    assert "time control (R6): no - parallel workers share the target's clock" in run.stdout
    assert "keys used: 4" in run.stdout
    assert all(run.stdout.count(f"{key[:9]}…") == 1 for key in POOL)


def test_parallel_workers_need_enough_keys_and_share_the_session_cap() -> None:
    with LiveServer(create_app(Config(keys=POOL, admin=True))) as server:
        too_few_keys = _contract("--base-url", server.url, "--api-key", POOL[0], "-n", "2")
        too_small_a_cap = _contract("--base-url", server.url, *_keys(*POOL), "--max-sessions", "1", "-n", "2")
    assert too_few_keys.returncode != 0
    assert "2 parallel workers need at least 2 API keys" in too_few_keys.stdout + too_few_keys.stderr
    assert too_small_a_cap.returncode != 0
    assert (
        "a session cap of 1 cannot be shared by 2 parallel workers" in too_small_a_cap.stdout + too_small_a_cap.stderr
    )


def test_a_target_with_one_model_and_no_room_for_a_burst_says_which_rules_it_could_not_check(
    tmp_path: Path,
) -> None:
    """One listed model cannot prove a switch (R2), `--concurrency 1` no burst (R8): both read NOT CHECKED
    with what to give the run, and the run fails, since the target would allow them."""
    models = tmp_path / "models.json"
    listed = {"id": "mistral-31-24b", "blockchainID": "0x" + "8e" * 32, "created": 1741219200, "tags": ["LLM"]}
    models.write_text(json.dumps({"default": "mistral-31-24b", "models": [{**listed, "modelType": "LLM"}]}))
    with serving("--log-level", "warning", "--models", str(models), keys=MOCK_KEYS) as mock:
        run = _contract("--base-url", mock.url, *_keys(*MOCK_KEYS), "--concurrency", "1", *RULE_SCENARIOS)
    assert run.returncode == 1, run.stdout[-3000:]
    rules = _rule_lines(run.stdout)
    # R3's scenario also judges a modelsession after a bid (R2): without a bid id it skips too
    assert rules["R2"] == (
        "NOT CHECKED (no bid ids: pass --bid-id to let the run open bid sessions; "
        "the target lists 1 model(s): this rule needs 2)"
    ), rules
    assert rules["R8"] == (
        "NOT CHECKED (R8 needs at least 2 parallel creates: raise --concurrency; "
        "no bid ids: pass --bid-id to let the run open bid sessions)"
    ), rules
    assert rules["R1"].startswith("passed"), rules
    _never_passed_unchecked(run.stdout)


def _counting_opens(app: Any, opened: set[str]) -> Any:
    """`app`, noting every session id a 200 modelsession or bidsession answer names: the sessions the run
    opened, counted by the target (a reuse names one already noted)."""

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(("/modelsession", "/bidsession")):
            await app(scope, receive, send)
            return
        status, body = [0], bytearray()

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if status[0] == 200 and not message.get("more_body"):
                    opened.add(str(json.loads(bytes(body))["session_id"]))
            await send(message)

        await app(scope, receive, noting)

    return counting


def test_parallel_workers_never_open_more_than_the_cap_at_the_default_settings() -> None:
    """pytest -n 2 at the default settings against a URL (cap 20, 20 requests/s) with a bid id: counted by
    the target, the run opens at most 20 sessions (each worker at most its 10), and says how many."""
    opened: set[str] = set()
    with LiveServer(_counting_opens(create_app(Config(keys=POOL, admin=True)), opened)) as server:
        run = _contract("--base-url", server.url, *_keys(*POOL), "--bid-id", "0x" + "b1" * 32, "-n", "2", "-q")
    assert run.returncode == 0, run.stdout[-3000:]
    said = re.search(r"safety: (\d+) sessions opened \(cap 20, 10 per worker\)", run.stdout)
    assert said is not None, run.stdout[-800:]
    assert int(said[1]) == len(opened) <= 20, (said[1], len(opened))
