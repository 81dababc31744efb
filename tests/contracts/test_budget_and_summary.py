"""The suite's parts in-process: the session budget, the per-rule summary, answer checks, bursts and
the start-up probe (the suite as users run it: test_contract_suite.py)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from contracts import client as client_module
from contracts.answers import AnswerError, BodyContractError, RuleBroken, expect_answer
from contracts.api import CHAT_RULES, CLOSE, MODEL_SESSION, PING, RULES
from contracts.budget import Budget
from contracts.client import Client
from contracts.machine import SessionRules
from contracts.redact import excerpt
from contracts.runtime import Run, read_models
from contracts.safety import GENERATED_SHARE, MACHINE_SHARE, Ledger, cap_share, close_all
from contracts.settings import Settings
from contracts.summary import Summary
from contracts.target import probe
from tests.live import LiveServer

KEY = "sk-AbC123." + "0123456789abcdef" * 4
SESSION_ID = "0x" + "ab" * 32
ALIVE = {"status": "alive", "message": "Session is alive", "session_id": SESSION_ID, "success": True}


def test_the_rules_come_from_the_spec() -> None:
    assert ("R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", *CHAT_RULES) == RULES
    assert CHAT_RULES == ("C1", "C2", "C3", "C4", "C5", "C6")
    assert (PING.method, PING.path) == ("POST", "/api/v1/session/pingsession")


def test_a_check_may_open_sessions_only_while_the_others_reservations_stay_covered() -> None:
    ledger = Ledger(cap=4)
    ledger.reserve("r1", 2)
    ledger.reserve("r2", 1)
    assert ledger.free("r1") == 3
    assert ledger.free() == 1  # a generated case: every reservation counts
    assert ledger.may_open("r2", sessions=2)
    assert not ledger.may_open("r2", sessions=3)
    assert ledger.free("r1", keep=2) == 1
    ledger.opened |= {"0x1", "0x2", "0x3"}
    assert ledger.free() == 0
    ledger.release("r1")
    ledger.release("r1")  # twice is harmless
    assert ledger.free() == 0
    assert ledger.free("r2") == 1
    assert Ledger(cap=None).free() is None
    assert Ledger(cap=None).may_open(sessions=100)


def test_the_cap_is_shared_between_parallel_workers() -> None:
    assert [cap_share(10, index, 3) for index in range(3)] == [4, 3, 3]
    assert cap_share(None, 0, 4) is None
    assert cap_share(5, 0, 1) == 5
    with pytest.raises(ValueError, match="a session cap of 1 cannot be shared by 2 parallel workers"):
        cap_share(1, 1, 2)


def _response(status: int, body: Any, content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers["content-type"] = content_type
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return response


def test_every_answer_is_checked_for_status_content_type_and_body() -> None:
    assert expect_answer(PING, _response(200, ALIVE)) == ALIVE
    with pytest.raises(RuleBroken, match="R5 broken: POST /api/v1/session/pingsession answered 500, expected 200"):
        expect_answer(PING, _response(500, {"detail": "x"}), rule="R5")
    with pytest.raises(AnswerError, match="answered 404, expected 200"):
        expect_answer(PING, _response(404, {"detail": "Not Found"}))
    with pytest.raises(AnswerError, match="with content type 'text/plain', not JSON"):
        expect_answer(PING, _response(200, ALIVE, "text/plain"))
    with pytest.raises(AnswerError, match="a body that is not JSON"):
        expect_answer(PING, _response(200, b"<html>", "application/json"))
    with pytest.raises(BodyContractError, match=r"\$.success"):
        expect_answer(PING, _response(200, {**ALIVE, "success": False}))


def _report(nodeid: str, outcome: str, *, checked: tuple[str, ...] = (), longrepr: Any = None) -> Any:
    properties = [("checked", rule) for rule in checked]
    return SimpleNamespace(
        nodeid=nodeid,
        when="call",
        passed=outcome == "passed",
        failed=outcome == "failed",
        skipped=outcome == "skipped",
        longrepr=longrepr,
        user_properties=properties,
    )


def _worker(**overrides: Any) -> dict[str, Any]:
    worker: dict[str, Any] = {
        "target": "http://gateway",
        "keys": ["sk-AbC123…"],
        "controls_time": False,
        "time": "no - the target has no admin clock",
        "controls_faults": False,
        "spend_allowed": False,
        "bids": False,
        "opened": 3,
        "cap": 10,
        "held_back": {"create (session cap reached)": 2},
        "keys_used": 1,
        "requests": 40,
        "cases": 7,
        "steps": 5,
        "teardown_problems": [],
    }
    return {**worker, **overrides}


def test_a_rule_passes_only_when_a_passing_test_checked_it() -> None:
    summary = Summary(Settings(base_url="http://gateway", api_keys=(KEY,), skip_rules=("R5",)))
    summary.describe("t::r1", ("R1",), ("POST /m",))
    summary.describe("t::machine", ("R1", "R2", "R3", "R4"), ("POST /m",))
    summary.describe("t::r2", ("R2",), ())
    summary.describe("t::r3", ("R3",), ())
    summary.describe("t::r4", ("R4", "R7"), ())
    summary.record(_report("t::r1", "passed", checked=("R1",)))
    summary.record(_report("t::machine", "passed", checked=("R1",)))
    summary.record(_report("t::r2", "failed", longrepr="E   contracts.answers.RuleBroken: R2 broken: kept the old one"))
    summary.record(_report("t::r3", "skipped", longrepr=("f.py", 1, "Skipped: no bid ids")))
    summary.record(_report("t::r4", "failed", checked=("R4",), longrepr="R7 broken: the other key's close"))
    summary.record(_report("t::unknown", "passed"))  # not a contract test
    summary.add_worker(_worker())
    assert summary.rule_line("R1") == "passed   (2 checked)"
    assert summary.rule_line("R2").startswith("FAILED   R2 broken: kept the old one   [1 failed]")
    assert summary.rule_line("R3") == "NOT CHECKED (no bid ids)"
    assert summary.rule_line("R4") == "passed   (1 checked)"  # checked, then failed on R7
    assert summary.rule_line("R5") == "NOT CHECKED (skipped by --skip-rule)"
    assert summary.rule_line("R8") == "NOT CHECKED (no test of it was selected)"
    assert summary.required() == ("R1", "R2", "R4", "R8")  # R5 skipped by the user; no bids, time, 2nd key
    assert summary.unchecked() == []  # R8's test was not selected
    summary.describe("t::r8", ("R8",), ())
    summary.record(_report("t::r8", "passed"))
    assert summary.unchecked() == ["R8 (1 test(s) ran but none exercised it)"]
    assert summary.failed_run()
    text = "\n".join(summary.lines(12.34))
    assert "FAILED: not checked although the target allows it: R8 (1 test(s) ran but none exercised it)" in text
    assert "safety: 3 sessions opened (cap 10); held back: 2 create (session cap reached); keys used: 1" in text
    assert "requests sent: 40   wall time: 12.3 s" in text
    assert summary.as_json(1.0)["rules"]["R1"] == "passed   (2 checked)"


def test_an_unnamed_failure_leaves_the_rule_unknown_and_workers_add_up() -> None:
    summary = Summary(Settings())
    summary.describe("t::m", ("R1",), ())
    summary.record(_report("t::m", "failed", longrepr="Traceback\nE   BodyContractError: $.model\nmore"))
    summary.add_worker(_worker(keys=["sk-A…", "sk-B…"], bids=True, controls_time=True, time="yes (admin clock)"))
    summary.add_worker(_worker(keys=["sk-A…", "sk-B…"], teardown_problems=["sk-A…: closesession answered 500"]))
    assert summary.rule_line("R1").startswith("UNKNOWN  a test covering it failed first: BodyContractError: $.model")
    assert summary.required() == tuple(rule for rule in RULES if rule not in CHAT_RULES)  # chat not allowed
    lines = summary.lines(1.0)
    assert "target: http://gateway   keys: sk-A…, sk-B…   workers: 2" in lines
    assert (
        "safety: 6 sessions opened (cap 20, 10 per worker); held back: 4 create (session cap reached); keys used: 2"
        in lines
    )
    assert "teardown: sk-A…: closesession answered 500" in lines
    assert summary.failed_run()


@pytest.fixture
def gateway() -> Iterator[tuple[LiveServer, dict[str, bool]]]:
    """A tiny gateway: modelsession opens one session per request (a race), close answers by flag."""
    opened: list[str] = []
    lock = threading.Lock()
    close_fails = {"yes": False}

    async def create(request: Request) -> Response:
        with lock:
            opened.append("0x" + f"{len(opened):064x}")
            session_id = opened[-1]
        body = {"success": True, "message": "Session created and associated with API key", "session_id": session_id}
        return JSONResponse({**body, "api_key_prefix": KEY[:9], "model": request.query_params["model_id"]})

    async def close(request: Request) -> Response:
        if close_fails["yes"]:
            return PlainTextResponse("oops", status_code=500)
        return JSONResponse({"success": True, "message": "No active session found to close", "session_id": None})

    routes = [Route(MODEL_SESSION.path, create, methods=["POST"]), Route(CLOSE.path, close, methods=["POST"])]
    with LiveServer(Starlette(routes=routes)) as server:
        yield server, close_fails


def test_a_burst_is_answered_in_full_and_seen_by_the_ledger(gateway: tuple[LiveServer, dict[str, bool]]) -> None:
    client = Client(gateway[0].url, [KEY], per_second=1)  # a burst does not wait for the rate limiter
    ledger = Ledger(cap=None)
    client.session.listeners.append(ledger.observe)
    answers = client.burst(MODEL_SESSION.path, key=KEY, size=5, params={"model_id": "m"}, json={"sessionDuration": 300})
    assert [answer.status_code for answer in answers] == [200] * 5
    assert len({answer.json()["session_id"] for answer in answers}) == 5
    assert len(ledger.opened) == 5
    assert client.sent == 5
    assert all(KEY not in line for line in client.log)


def test_a_burst_writes_every_request_but_its_last_byte_before_any_last_byte(
    gateway: tuple[LiveServer, dict[str, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requests become whole together: a busy client cannot spread them over milliseconds."""
    writes: list[tuple[int, bytes]] = []
    connect = client_module._connect

    def watched(url: str) -> http.client.HTTPConnection:
        connection, number = connect(url), len(writes)
        send = connection.send

        def recorded(data: Any) -> None:
            writes.append((number, bytes(data)))
            send(data)

        monkeypatch.setattr(connection, "send", recorded)
        writes.append((number, b""))
        return connection

    monkeypatch.setattr(client_module, "_connect", watched)
    client = Client(gateway[0].url, [KEY], per_second=None)
    answers = client.burst(MODEL_SESSION.path, key=KEY, size=3, params={"model_id": "m"}, json={"sessionDuration": 300})
    assert [answer.status_code for answer in answers] == [200] * 3
    assert writes[:3] == [(0, b""), (1, b""), (2, b"")]  # every connection opened first
    parts = writes[3:]
    assert [(n, len(data) == 1) for n, data in parts] == [
        (0, False),
        (1, False),
        (2, False),
        (0, True),
        (1, True),
        (2, True),
    ]
    request = parts[0][1] + parts[3][1]
    assert all(head + last == request for (_, head), (_, last) in zip(parts[:3], parts[3:], strict=True))
    assert request.startswith(b"POST /api/v1/session/modelsession?model_id=m HTTP/1.1\r\n")
    assert b"\r\nAccept-Encoding: identity\r\n" in request  # the answers are read as sent: never compressed
    assert request.endswith(b'\r\n\r\n{"sessionDuration": 300}')


def test_teardown_checks_each_close(gateway: tuple[LiveServer, dict[str, bool]]) -> None:
    client = Client(gateway[0].url, [KEY], per_second=None)
    assert close_all(client, Ledger(cap=None), (KEY,)) == []
    gateway[1]["yes"] = True
    assert close_all(client, Ledger(cap=None), (KEY,)) == [
        "sk-AbC123…: POST /api/v1/session/closesession answered 500, expected 200: oops"
    ]
    unreachable = Client("http://127.0.0.1:9", [KEY], per_second=None)
    assert close_all(unreachable, Ledger(cap=None), (KEY,)) == ["sk-AbC123…: ConnectionError"]


def test_the_probe_reads_the_models_or_stops_with_one_line() -> None:
    wrong = "sk-Wrong2." + "0123456789abcdef" * 4

    def ping(request: Request) -> Response:
        if request.headers["authorization"] == f"Bearer {wrong}":
            return JSONResponse({"detail": "Invalid API key"}, status_code=401)
        return JSONResponse(
            {"status": "no_session", "message": "No active session found for this API key", "success": False}
        )

    def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "m", "blockchainID": "0x" + "1" * 64}, "junk"]})

    def refused(request: Request) -> Response:
        return JSONResponse({"detail": "Invalid API key"}, status_code=401)

    good = Starlette(routes=[Route(PING.path, ping, methods=["POST"]), Route("/api/v1/models", models)])
    with LiveServer(good) as server:
        assert probe(Client(server.url, [KEY], None), (KEY,)) == {
            "m": "0x" + "1" * 64,
            "0x" + "1" * 64: "0x" + "1" * 64,
        }
        second = (
            r"^the target refused API key 2 of 2 \(sk-Wrong2…\): \{\"detail\":\"Invalid API key\"\}\. Check --api-key"
        )
        with pytest.raises(pytest.UsageError, match=second):  # before any test: not blamed on the gateway
            probe(Client(server.url, [KEY, wrong], None), (KEY, wrong))
    refusing = Starlette(routes=[Route(PING.path, refused, methods=["POST"])])
    with LiveServer(refusing) as server, pytest.raises(pytest.UsageError, match=r"refused API key 1 of 1 \(sk-AbC123…"):
        probe(Client(server.url, [KEY], None), (KEY,))
    with pytest.raises(pytest.UsageError, match=r"cannot reach the target at http://127\.0\.0\.1:9: ConnectionError"):
        probe(Client("http://127.0.0.1:9", [KEY], None), (KEY,))
    assert read_models(["not", "a", "list"]) == {}


def test_an_answer_is_quoted_as_a_clean_excerpt() -> None:
    page = (
        "<!DOCTYPE HTML>\n<html><head><title>Error response</title><style>p {}</style></head><body>"
        "<h1>Error response</h1>\n<p>Error code: 501</p><p>Message: Unsupported method (&#x27;POST&#x27;).</p>"
        "<p>Error code explanation: 501 - Server does not support this operation.</p></body></html>"
    )
    assert excerpt(page) == (
        "Error response Error code: 501 Message: Unsupported method ('POST'). "
        "Error code explanation: 501 - Server does not…"
    )
    assert excerpt("x" * 130) == "x" * 120 + "…"  # one long word: cut at the limit
    assert excerpt('{"detail":\n"key sk-AbC123.0123abcd\x1b[31m"}') == '{"detail": "key sk-AbC123… [31m"}'


def test_the_machine_tests_share_what_the_fixed_reservations_leave() -> None:
    """Cap 10 (examples/contract-staging.yml) without bids or a clock: R1 2, R2 1, R7 1 and R8 2 are fixed,
    so each machine test gets 2 and the failed switch none; at the default cap of 20 with bids they get
    their 4 and 5, the failed switch and the generated modelsessions 1 each. Without a cap every ask stands."""
    fixed = {"r1": 2, "r2": 1, "r7": 1, "r8": 2}
    shares = [(1, "one key", 4), (1, "two keys", 5), (2, "failed switch", 1), (2, "generated", 1)]
    ci = Ledger(cap=10)
    for owner, sessions in fixed.items():
        ci.reserve(owner, sessions)
    ci.share_out(shares)
    assert {owner: ci.reserved[owner] for _, owner, _ in shares} == {
        "one key": 2,
        "two keys": 2,
        "failed switch": 0,
        "generated": 0,
    }
    default = Ledger(cap=20)
    for owner, sessions in {**fixed, "r3": 1, "r8 bids": 2}.items():
        default.reserve(owner, sessions)
    default.share_out(shares)
    assert [default.reserved[owner] for _, owner, _ in shares] == [4, 5, 1, 1]
    clocked = Ledger(cap=20)  # R6 too: one session fewer to share, and the failed switch still gets one
    for owner, sessions in {**fixed, "r3": 1, "r8 bids": 2, "r6": 1}.items():
        clocked.reserve(owner, sessions)
    clocked.share_out(shares)
    assert [clocked.reserved[owner] for _, owner, _ in shares] == [4, 5, 1, 0]
    chatting = Ledger(cap=14)  # the CI job with chat: the chat scenarios' 4 are left out of the shares
    for owner, sessions in fixed.items():
        chatting.reserve(owner, sessions)
    chatting.share_out(shares, keep=4)
    assert [chatting.reserved[owner] for _, owner, _ in shares] == [2, 2, 0, 0]
    unlimited = Ledger(cap=None)
    unlimited.share_out(shares)
    assert [unlimited.reserved[owner] for _, owner, _ in shares] == [4, 5, 1, 1]


def test_the_machine_opens_its_reservation_then_leaves_the_generated_cases_theirs() -> None:
    """Its reservation first; beyond it, while GENERATED_SHARE stays free; the checks' extra creates leave
    MACHINE_SHARE beyond every reservation."""
    run = SimpleNamespace(
        ledger=Ledger(cap=10),
        models={},
        model_names=[],
        default_model=None,
        controls_time=False,
        controls_faults=False,
        settings=Settings(base_url="http://127.0.0.1:1", max_sessions=10),
    )
    run.ledger.opened |= {f"0x{index}" for index in range(4)}
    run.ledger.reserve("test_session_rules", 2)
    assert Budget(cast(Run, run), "test_r8").spare() == 10 - 4 - 2 - MACHINE_SHARE
    machine = SessionRules(cast(Run, run), (KEY,), Budget(cast(Run, run), "test_session_rules"), lambda rule: None)
    for opened in range(10 - 4 - GENERATED_SHARE):
        assert machine._may_open(), f"the machine stops after {opened} session(s)"
        run.ledger.opened.add(f"0xm{opened}")
    assert not machine._may_open()  # the generated cases' share is left


def test_a_scenarios_further_opens_come_first_of_what_the_fixed_reservations_leave() -> None:
    """`more=`: on top of the scenario's fixed reservation, before the state machine's shares (the CI job's
    cap of 10, two keys, no bids, no clock); `holds` says whether a reservation has one more left."""
    ci = Ledger(cap=10)
    for owner, sessions in {"r1": 1, "r2": 1, "r7": 1, "r8": 2, "failed switch": 1}.items():
        ci.reserve(owner, sessions)
    ci.share_out([(0, "r2", 1), (0, "r4", 1), (0, "failed switch", 1), (1, "one key", 4), (1, "two keys", 5)])
    assert ci.reserved == {"r1": 1, "r2": 2, "r7": 1, "r8": 2, "failed switch": 2, "r4": 1, "one key": 1, "two keys": 0}
    assert ci.holds("r2", spent=1)
    assert not ci.holds("r2", spent=2)
    assert not ci.holds("r2", spent=1, sessions=2)
    assert Ledger(cap=None).holds("r2", spent=5)
