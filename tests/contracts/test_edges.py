"""The suite's parts on their edges, in-process: the oracle's refusals to predict, request bodies, a 429
that never ends, the differential run's keys and non-JSON answers, given bid ids, the summary and the
plugin's hooks with no run; and the one usage error a user meets before any request."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from contracts.api import PING
from contracts.chat import chat_body, embeddings_body
from contracts.client import RETRIES_ON_429, Client
from contracts.diff import Side, run_diff, sequence, side_keys
from contracts.oracle import Life, Oracle
from contracts.plugin import ContractPlugin
from contracts.runtime import Run
from contracts.safety import Ledger
from contracts.settings import ENV, MOCK_KEYS, Settings
from contracts.summary import Summary
from tests.contracts.test_budget_and_summary import _report, _worker
from tests.live import LiveServer

KEY = MOCK_KEYS[0]
SESSION = "0x" + "ab" * 32


def _oracle_with_a_live_session() -> Oracle:
    oracle = Oracle(models={"m": "0xm", "n": "0xn"}, default_model=None)
    oracle.opened("k", SESSION, "model", "0xm", expires_at=1000.0)
    return oracle


def test_a_failed_create_closes_on_chain_only_a_live_session_it_would_have_switched_away_from() -> None:
    oracle = _oracle_with_a_live_session()
    assert oracle.life("k", 10.0) is Life.ALIVE
    oracle.failed_create("k", "bid", "n", 10.0)  # a failed bid closes nothing
    oracle.failed_create("k", "model", "m", 10.0)  # a reuse never reaches the chain
    assert oracle.ping_answers("k") == set()  # the session is not closed on chain
    oracle.book("k").pending_close_fail = 1
    oracle.failed_create("k", "model", "n", 10.0)  # the switch's close fails: still open on chain
    assert (oracle.book("k").pending_close_fail, oracle.ping_answers("k")) == (0, set())
    oracle.failed_create("k", "model", "n", 10.0)
    assert oracle.ping_answers("k") == {("dead", SESSION), ("no_session", None)}


def test_forgetting_a_key_without_a_session_only_notes_the_rule() -> None:
    oracle = Oracle(models={}, default_model=None)
    oracle.forget("k", "R4")
    assert (oracle.book("k").session, oracle.book("k").ended_by, oracle.ended) == (None, "R4", {})
    assert oracle.ping_answers("k") == set()


def test_request_bodies_carry_only_what_is_given() -> None:
    assert chat_body(None) == {"messages": [{"role": "user", "content": "hello"}]}
    assert embeddings_body("m", session_id=SESSION) == {"input": "hello", "model": "m", "session_id": SESSION}


def test_a_429_that_never_ends_is_answered_after_the_retries() -> None:
    asked: list[int] = []

    async def busy(request: Request) -> Response:
        asked.append(1)
        return PlainTextResponse("slow down", status_code=429, headers={"Retry-After": "0"})

    seen: list[int] = []
    with LiveServer(Starlette(routes=[Route(PING.path, busy, methods=["POST"])])) as server:
        client = Client(server.url, (KEY,), None)
        client.session.listeners.append(lambda response: seen.append(response.status_code))
        response = client.post(PING.path, key=KEY)
    assert response.status_code == 429
    assert (len(asked), seen) == (RETRIES_ON_429, [429])  # the listeners see the last answer, once


def _args(a: str, b: str, api_key: list[str] | None = None) -> argparse.Namespace:
    return argparse.Namespace(a=a, b=b, api_key=api_key or [], b_api_key=[])


def test_a_url_side_of_the_differential_run_needs_keys_and_a_mock_side_mirrors_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV["api_keys"], raising=False)
    monkeypatch.delenv("MORPHEUS_B_API_KEYS", raising=False)
    assert side_keys(_args("http://a", "mock", [KEY])) == ((KEY,), (KEY,))
    with pytest.raises(SystemExit, match=r"^http://a: give its API key\(s\): API_KEY=\.\.\. \(make\)"):
        side_keys(_args("http://a", "mock"))


def test_the_differential_run_compares_answers_that_are_not_json_by_their_text() -> None:
    async def text(request: Request) -> Response:
        return PlainTextResponse("<html>gateway</html>")

    with LiveServer(Starlette(routes=[Route("/{path:path}", text, methods=["POST"])])) as server:
        side = Side(Client(server.url, MOCK_KEYS, None), MOCK_KEYS)
        other = Side(Client(server.url, MOCK_KEYS, None), MOCK_KEYS)
        steps = sequence(7, 3, ["m"], 2)
        assert run_diff(side, other, steps) == []
        assert side.send(steps[0]) == (200, "text/plain; charset=utf-8", "<html>gateway</html>")


def test_given_bid_ids_are_the_runs_even_against_the_mock() -> None:
    settings = Settings(base_url="http://gateway", api_keys=(KEY,), bid_ids=("0x" + "c1" * 32,))
    run = Run(settings, "http://gateway", (KEY,), Client("http://gateway", (KEY,), None), Ledger(None), True, True)
    assert run.bids == ("0x" + "c1" * 32,)
    unbid = replace(run, settings=replace(settings, bid_ids=()))  # the mock's admin API over a URL: no made-up bids
    assert unbid.bids == ()
    in_process = replace(unbid, settings=Settings(api_keys=(KEY,)))
    assert len(in_process.bids) == 2  # the in-process mock accepts any bid id: the run makes two up


def test_a_report_that_comes_with_its_contract_is_described_by_it() -> None:
    summary = Summary(Settings())
    assert summary.required() == ()  # no worker reported yet: nothing can be required
    report = _report("t::r1", "passed", checked=("R1",))
    report.user_properties.append(("contract", json.dumps({"rules": ["R1"], "operations": ["POST /m"]})))
    summary.record(report)
    summary.add_worker(_worker())
    assert summary.covers["t::r1"] == (("R1",), ("POST /m",))
    assert summary.rule_line("R1") == "passed   (1 checked)"


def _plugin(tmp_path: Path) -> tuple[ContractPlugin, Any]:
    option = SimpleNamespace(summary_json=str(tmp_path / "summary.json"))
    config = SimpleNamespace(stash={}, option=option, invocation_params=SimpleNamespace(args=("--api-key", KEY)))
    return ContractPlugin(config, Summary(Settings()), (KEY,), hypothesis_profile="default"), config  # type: ignore[arg-type]


def test_the_plugin_with_no_run_redacts_failures_adds_the_replay_line_and_writes_the_summary(tmp_path: Path) -> None:
    plugin, config = _plugin(tmp_path)
    unmarked = SimpleNamespace(name="test_mine", nodeid="t::mine", get_closest_marker=lambda name: None)
    plugin.pytest_collection_finish(SimpleNamespace(items=[unmarked]))  # type: ignore[arg-type]
    assert plugin.summary.covers == {}  # a test without the contract marker is not the suite's
    report = _report("t::mine", "failed", longrepr=f"E   AssertionError: refused {KEY}")
    report.sections = []
    plugin.pytest_runtest_logreport(report)
    assert report.longrepr == "E   AssertionError: refused sk-Contr1…"
    ((title, replay),) = report.sections
    assert title == "replay"
    assert replay.startswith("Replay: ")
    assert KEY not in replay
    plugin.pytest_testnodedown(SimpleNamespace(), None)  # a worker that reported nothing adds nothing
    assert plugin.summary.workers == []
    plugin.summary.add_worker(_worker(teardown_problems=["sk-Contr1…: closesession answered 500"]))
    session = SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
    plugin.pytest_sessionfinish(session)  # type: ignore[arg-type]
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["rules"]["R1"].startswith("NOT CHECKED")
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED  # the teardown's wrong answer fails the run


def test_a_url_without_keys_stops_the_run_with_one_line() -> None:
    environ = {name: value for name, value in os.environ.items() if name not in ENV.values()}
    command = [sys.executable, "-m", "contracts", "--base-url", "http://127.0.0.1:9"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, env=environ)
    assert run.returncode == 4
    assert run.stderr.strip() == "ERROR: --base-url needs at least one --api-key (or MORPHEUS_API_KEYS)"
    assert "Traceback" not in run.stdout + run.stderr
