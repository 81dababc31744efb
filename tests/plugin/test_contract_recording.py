"""Recording an application's contract (the fixture's `--morpheus-record`, a served mock's `--record`),
the file format (openapi/recording.schema.json, read through `openapi`), and `morpheus-contract verify`
in this process: its verdicts, NOT VERIFIED reasons, JUnit report and exit codes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from contracts.__main__ import main as contract_main
from contracts.diff import Shapes
from contracts.inprocess import LiveServer
from contracts.judge import replayed
from contracts.settings import MOCK_KEYS, Settings
from contracts.target import open_run
from contracts.verify import _replay
from mockserver.__main__ import main as mock_main
from mockserver.config import Config, config_from_args, problems
from mockserver.recording import ServedRecording
from mockserver.web.app import create_app
from openapi import (
    ADMIN_SPEC_PATH,
    RECORDING_SCHEMA_PATH,
    RecordingError,
    Validators,
    aliased_key,
    hide_keys,
    load_spec,
    new_recording,
    read_recording,
    write_recording,
)
from tests.contracts.test_chat_parts import _response

pytest_plugins = ["pytester"]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "session-app"
BODY = {"sessionDuration": 600, "directPayment": False, "failover": False}
CREATE = "/api/v1/session/modelsession?model_id=mistral-31-24b"
PING = "/api/v1/session/pingsession"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project's contract, recorded by its own tests (one inner pytest session)."""
    folder = tmp_path_factory.mktemp("session-app")
    for name in ("morpheus_app.py", "test_morpheus_app.py", "pytest.ini"):
        shutil.copy(EXAMPLE / name, folder / name)
    path = folder / "contract.json"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--morpheus-record", str(path)]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    return path


def test_each_test_is_one_sequence_with_its_calls_and_controls_and_no_key(recording: Path) -> None:
    document = read_recording(recording)
    names = [sequence["name"].split("::")[1] for sequence in document["sequences"]]
    assert names[0] == "test_a_session_is_opened_once_and_reused"
    assert len(names) == 9
    text = recording.read_text()
    assert "sk-Mock" not in text  # keys (and their prefixes) are aliases
    retried = document["sequences"][1]["steps"]
    assert retried[0] == {"control": {"operation": "arm_fault", "method": "POST", "path": "/__admin/faults",
                                      "body": {"kind": "create_fail", "count": 1, "retries": True}}}  # fmt: skip
    assert [step["answer"]["status"] for step in retried[1:4]] == [500, 500, 500]
    assert retried[1]["request"]["authorization"] == "Bearer key1"
    assert retried[1]["answer"]["body"]["detail"].startswith("Error from proxy router")
    marker = document["sequences"][3]["steps"]
    assert marker[1]["request"]["authorization"] == "Bearer sk-Wrong1." + "0" * 64  # an unknown key: no secret
    assert marker[0]["answer"]["body"]["api_key_prefix"] == "key1"


def test_verify_replays_every_recorded_test_against_the_mock(recording: Path, tmp_path: Path) -> None:
    report = tmp_path / "verify.xml"
    assert contract_main(["verify", str(recording), "--junitxml", str(report)]) == 0
    xml = report.read_text()
    assert 'tests="9" failures="0" skipped="0"' in xml


def _served_without_admin() -> LiveServer:
    return LiveServer(create_app(Config(keys=MOCK_KEYS, retry_pause=False)))


def test_what_a_target_cannot_replay_is_not_verified(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MORPHEUS_API_KEYS", MOCK_KEYS[0])
    monkeypatch.setenv("MORPHEUS_RATE_LIMIT", "0")
    with _served_without_admin() as server:
        assert contract_main(["verify", str(recording), "--base-url", server.url, "--max-sessions", "1"]) == 0
    out = capsys.readouterr().out
    assert "NOT VERIFIED test_morpheus_app.py::test_exactly_one_sdk_call_fails_whatever_its_retries (needs the " \
        "admin API: step 1 is the mock-only control arm_fault)" in out  # fmt: skip
    assert "test_embeddings_replace_the_chat_session (needs --allow-chat: 2 chat" in out
    assert "passed       test_morpheus_app.py::test_a_session_is_opened_once_and_reused" in out
    assert "test_in_process_through_httpx_asgi_transport (--max-sessions (1) leaves no room" in out
    monkeypatch.setenv("MORPHEUS_ALLOW_CHAT", "1")
    with _served_without_admin() as server:
        assert contract_main(["verify", str(recording), "--base-url", server.url, "--max-chats", "1"]) == 0
    assert "--max-chats (1) leaves no room for its 2 chat" in capsys.readouterr().out


def _edited(recording: Path, folder: Path, change: Any) -> Path:
    document = json.loads(recording.read_text())
    change(document)
    path = folder / "edited.json"
    path.write_text(json.dumps(document))
    return path


def test_a_different_answer_fails_with_the_step_what_was_recorded_what_came_and_a_curl(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def two_keys_and_a_wrong_status(document: dict[str, Any]) -> None:
        document["sequences"][0]["steps"][1]["answer"]["status"] = 201
        document["sequences"][1]["keys"] = 3

    path = _edited(recording, tmp_path, two_keys_and_a_wrong_status)
    report = tmp_path / "r.xml"
    assert contract_main(["verify", str(path), "--junitxml", str(report)]) == 1
    out = capsys.readouterr().out
    assert "FAILED       test_morpheus_app.py::test_a_session_is_opened_once_and_reused" in out
    assert "step 2: POST /api/v1/session/modelsession (create_model_session_api_v1_session_modelsession_post)" in out
    assert "recorded: 201 application/json" in out
    assert "got:      200 application/json" in out
    assert "replay:   curl -X POST" in out
    assert "Bearer sk-Contr1…'" in out
    assert MOCK_KEYS[0] not in out
    assert "(needs 3 keys, the target was given 2: add --api-key)" in out
    assert 'failures="1" skipped="1"' in report.read_text()


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (0, "recorded with format version 0, which this kit no longer reads (it reads version 1): record it again"),
        (2, "recorded with format version 2, newer than this kit reads (1): upgrade the kit"),
        ("1", "the format version must be a whole number, got '1'"),
    ],
)
def test_another_format_version_is_refused_in_one_line(
    version: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({**new_recording("x", []), "version": version}))
    assert contract_main(["verify", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"morpheus-contract verify: {path}: {message}"), line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the recording"),
        ("{", "not a contract recording (not JSON"),
        ("[]", 'not a contract recording (no "format"'),
        (json.dumps({**new_recording("x", []), "sequences": [{"name": ""}]}), "not a valid contract recording: $."),
    ],
)
def test_a_file_that_is_not_a_recording_is_one_line(content: str | None, message: str, tmp_path: Path) -> None:
    path = tmp_path / "file.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RecordingError, match=f"^{path}: {message}".replace("(", r"\(").replace("$", r"\$")):
        read_recording(path)


def test_a_writer_cannot_write_what_the_schema_refuses(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="breaks its own schema"):
        write_recording(tmp_path / "x.json", {"format": "morpheus-contract-recording"})
    assert json.loads(RECORDING_SCHEMA_PATH.read_text())["properties"]["version"] == {
        "const": 1,
        "description": "The format version; a reader refuses one it does not read, in one line.",
    }


def test_keys_are_hidden_as_aliases_and_found_again() -> None:
    key = MOCK_KEYS[0]
    assert hide_keys(f"Bearer {key} {key[:9]}… sk-Other1.abc", [key]) == "Bearer key1 key1… sk-Other1." + "0" * 64
    assert hide_keys("sk-Contr1.ffff", ["sk-Contr1"]) == "key1"  # known by its prefix only
    assert aliased_key("key2", MOCK_KEYS) == MOCK_KEYS[1]
    assert aliased_key("key3", MOCK_KEYS) is None
    assert aliased_key("Bearer", MOCK_KEYS) is None


def test_verify_options_and_targets_it_cannot_use_are_one_line(
    recording: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same one line as the suite's for a flag and its variable: nonsense, negative limits, no scheme.
    for argv, line in (
        (["--max-sessions", "ten"], "--max-sessions: expected a whole number of at least 0, got 'ten'"),
        (["--max-sessions", "-3"], "--max-sessions: expected a whole number of at least 0, got '-3'"),
        (["--rate-limit", "nan"], "--rate-limit: expected a number of at least 0, got 'nan'"),
        (["--base-url", "staging.example"], "--base-url 'staging.example': not a URL: add http:// or https://"),
    ):
        assert contract_main(["verify", str(recording), *argv]) == 2
        (said,) = capsys.readouterr().err.strip().splitlines()
        assert said.startswith(f"morpheus-contract verify: {line}")
    with pytest.raises(SystemExit, match="2"):
        contract_main(["verify", str(recording), "--bogus"])
    (said,) = capsys.readouterr().err.strip().splitlines()
    assert said == (
        "morpheus-contract verify: unrecognized arguments: --bogus (morpheus-contract verify --help lists the options)"
    )
    assert contract_main(["verify", str(recording), "--base-url", "http://127.0.0.1:9"]) == 2
    assert "needs at least one --api-key" in capsys.readouterr().err
    monkeypatch.setenv("MORPHEUS_MAX_SESSIONS", "ten")
    assert contract_main(["verify", str(recording)]) == 2
    assert "MORPHEUS_MAX_SESSIONS: expected a whole number of at least 0, got 'ten'" in capsys.readouterr().err
    monkeypatch.delenv("MORPHEUS_MAX_SESSIONS")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    assert contract_main(["verify", str(recording), "--base-url", url, "--api-key", MOCK_KEYS[0]]) == 4
    assert "cannot reach the target" in capsys.readouterr().err


def test_a_served_mock_records_by_key_by_scenario_and_notes_global_controls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "served.json"
    app = ServedRecording(path).wrap(create_app(Config(keys=MOCK_KEYS, admin=True, retry_pause=False, record=path)))
    first, second = ({"Authorization": f"Bearer {key}"} for key in MOCK_KEYS)
    with TestClient(app) as client:
        client.post(CREATE, json=BODY, headers=first)
        client.post("/api/v1/nothing", headers=first)  # a 404: not in the spec, still the application's call
        client.post("/__admin/clock/advance", json={"seconds": 5})  # every sequence's
        client.post("/__admin/sync")  # no body
        client.delete(f"/__admin/faults?key={MOCK_KEYS[1][:9]}")  # the second key's
        client.post("/__admin/faults", json={"kind": "ping_dead", "count": 1, "key": MOCK_KEYS[1][:9]})
        client.post(CREATE, json=BODY, headers=second)
        client.post(PING, headers=second)
        client.post(CREATE, json=BODY, headers={**first, "X-Morpheus-Scenario": "switch"})
        client.post(PING, headers={"X-Morpheus-Scenario": "switch"})
        assert client.put(SCENARIO, json={"name": " checkout "}).json() == {"name": "checkout", "recording": True}
        client.post(PING, headers=second)  # in the scenario the admin API set
        assert _admin("get_scenario", client.get(SCENARIO)) == {"name": "checkout", "recording": True}
        assert client.put(SCENARIO, json={"name": ""}).status_code == 422
        assert client.put(SCENARIO, json={"name": "x", "other": 1}).status_code == 422
        assert _admin("set_scenario", client.put(SCENARIO, json={"name": None}))["name"] is None
        client.post(PING)
        client.get("/__admin/state")  # a read: not a control
        client.get("/health")  # not the API
        assert client.post("/__admin/faults", json={"kind": "nope"}).status_code == 422  # refused: nothing changed
    document = read_recording(path)
    steps = {sequence["name"]: sequence["steps"] for sequence in document["sequences"]}
    assert list(steps) == ["key1", "key2", "switch", "checkout", "no key"]
    assert [_what(step) for step in steps["checkout"]] == ["advance_clock", "run_sync", "pingsession"]
    assert [_what(step) for step in steps["key1"]] == ["modelsession", "nothing", "advance_clock", "run_sync"]
    assert steps["key1"][1]["operation"] is None
    assert [_what(step) for step in steps["key2"]] == [
        "advance_clock",
        "run_sync",
        "clear_faults",
        "arm_fault",
        "modelsession",
        "pingsession",
    ]
    assert steps["key2"][2]["control"]["query"] == "key=key1"  # its own first key
    assert steps["key2"][3]["control"]["body"]["key"] == "key1"
    assert [_what(step) for step in steps["switch"]][:3] == ["advance_clock", "run_sync", "modelsession"]
    assert MOCK_KEYS[0][:9] not in path.read_text()
    assert contract_main(["verify", str(path)]) == 0
    assert "5 passed, 0 failed" in capsys.readouterr().out


SCENARIO = "/__admin/recording/scenario"


def _admin(operation_id: str, response: Any) -> Any:
    assert Validators(load_spec(ADMIN_SPEC_PATH)).body_errors(operation_id, response.status_code, response.json()) == []
    return response.json()


def _what(step: dict[str, Any]) -> str:
    return str(step["control"]["operation"]) if "control" in step else str(step["request"]["path"]).rsplit("/")[-1]


INNER = """
import pytest
import requests

BODY = {"sessionDuration": 600, "directPayment": False, "failover": False}
CREATE, PING = "/api/v1/session/modelsession?model_id=mistral-31-24b", "/api/v1/session/pingsession"
CHAT = "/api/v1/chat/completions"
ASK = {"model": "mistral-31-24b", "messages": [{"role": "user", "content": "?"}]}


def test_every_control(morpheus_mock):
    second = morpheus_mock.new_key()

    def post(path, key, **body):
        return requests.post(morpheus_mock.url + path, headers=morpheus_mock.headers(key), timeout=10, **body)

    with morpheus_mock.fault("ping_dead", key=second, count=1):
        assert post(CREATE, second, json=BODY).status_code == 200
        assert post(PING, second).json()["status"] == "dead"
    morpheus_mock.clear_faults("create_fail", key=morpheus_mock.key)
    morpheus_mock.queue_reply(tool_calls=[("get_weather", '{"city": "Paris"}')], key=morpheus_mock.key)
    morpheus_mock.queue_reply(error_status=400, error_body='{"e": 1}', chunk_delay=0.01)
    morpheus_mock.queue_reply(error_status=400, error_body='{"e": 1}')
    assert post(CHAT, morpheus_mock.key, json=ASK).status_code == 200
    assert post(CHAT, morpheus_mock.key, json=ASK).status_code == 400
    morpheus_mock.automation(duration=600)
    morpheus_mock.automation()  # a read: no control
    morpheus_mock.clock.set(morpheus_mock.clock.now() + 30)
    morpheus_mock.reset()
    assert post(PING, morpheus_mock.key).json()["status"] == "no_session"


@pytest.mark.morpheus_mock(automation=False)
def test_automation_off(morpheus_mock):
    answer = requests.post(morpheus_mock.url + CHAT, headers=morpheus_mock.headers(), json=ASK, timeout=10)
    assert answer.status_code == 403
"""


def test_the_fixtures_controls_are_recorded_as_admin_calls_and_replayed_on_a_mock(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nmorpheus_record = out/contract.json\n")
    pytester.makepyfile(test_inner=INNER)
    pytester.runpytest_inprocess("-p", "no:randomly").assert_outcomes(passed=2)
    path = pytester.path / "out" / "contract.json"
    first, off = read_recording(path)["sequences"]
    controls = [step["control"] for step in first["steps"] if "control" in step]
    assert [(control["operation"], control["path"]) for control in controls] == [
        ("arm_fault", "/__admin/faults"),
        ("clear_faults", "/__admin/faults"),  # the end of the `with` block
        ("clear_faults", "/__admin/faults"),
        ("queue_reply", "/__admin/replies"),
        ("queue_reply", "/__admin/replies"),
        ("queue_reply", "/__admin/replies"),
        ("set_automation", "/__admin/keys/key1/automation"),
        ("set_clock", "/__admin/clock"),
        ("reset_state", "/__admin/state"),
    ]
    assert controls[0]["body"] == {"kind": "ping_dead", "key": "key2", "count": 1}
    assert [controls[1]["query"], controls[2]["query"]] == ["kind=ping_dead&key=key2", "kind=create_fail&key=key1"]
    assert controls[3]["body"]["tool_calls"] == [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]
    assert controls[4]["body"] == {"error": {"status": 400, "body": '{"e": 1}'}, "chunk_delay": 0.01}
    assert off["steps"][0] == {
        "control": {
            "operation": "set_automation",
            "method": "PUT",
            "path": "/__admin/keys/key1/automation",
            "body": {"enabled": False},
        }
    }
    assert first["keys"] == 2
    assert contract_main(["verify", str(path)]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out
    monkeypatch.setenv("MORPHEUS_RECORD", str(pytester.path / "from-env.json"))
    pytester.makeini("[pytest]\n")
    pytester.runpytest_inprocess("-p", "no:randomly", "-k", "automation_off").assert_outcomes(passed=1)
    assert [sequence["keys"] for sequence in read_recording(pytester.path / "from-env.json")["sequences"]] == [1]


def test_a_replayed_answer_that_breaks_the_spec_says_how() -> None:
    chat = "create_chat_completion_api_v1_chat_completions_post"
    flat = 'data: {"error": "text"}\n\n'
    _, problems = replayed(chat, _response(200, "text/event-stream", flat), MOCK_KEYS, Shapes())
    assert problems[0].startswith("POST /api/v1/chat/completions: stream event 1 (error frame) breaks the contract")
    judged, problems = replayed(chat, _response(500, "text/html", "<html>"), MOCK_KEYS, Shapes())
    assert problems == ["the body is not JSON: '<html>'"]
    assert str(judged) == '500 text/html "<html>"'
    assert str(replayed(None, _response(404, "", "{}"), (), Shapes())[0]) == "404 (no content type) {}"


def test_a_control_the_admin_api_refuses_or_a_request_with_no_answer_fails_its_step() -> None:
    run = open_run(Settings())
    try:
        refused = {"control": {"operation": "arm_fault", "method": "POST", "path": "/__admin/faults", "body": {}}}
        assert _replay(run, run.keys, [refused]) == "step 1: the admin API refused arm_fault: 422"
        run.client.base_url = "http://127.0.0.1:9"
        call = {"request": {"method": "POST", "path": PING}, "answer": {"status": 200}}
        assert _replay(run, run.keys, [call]) == f"step 1: POST {PING}: no answer (ConnectionError)"
    finally:
        run.stop()


def test_a_served_mock_records_with_one_worker_to_a_file_it_can_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "contract.json"
    assert problems(Config(record=record, workers=2, store="redis://127.0.0.1:1/0")) == [
        "--record needs one worker (got --workers 2): each would write its own file"
    ]
    assert config_from_args(["--record", str(record)], {}).record == record
    assert config_from_args([], {"MORPHEUS_MOCK_RECORD": str(record)}).record == record
    (tmp_path / "a-file").write_text("")
    assert mock_main(["--port", "0", "--record", str(tmp_path / "a-file" / "contract.json")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert (
        line == f"morpheus-mock: --record {tmp_path / 'a-file' / 'contract.json'}: File exists"
    )  # its folder is a file


def test_parallel_workers_record_one_file(pytester: pytest.Pytester) -> None:
    """Under pytest-xdist each worker records its tests; the controller merges them into the one file."""
    pytester.makepyfile(
        test_four="""
import pytest
import requests


@pytest.mark.parametrize("number", range(4))
def test_ping(morpheus_mock, number):
    requests.post(morpheus_mock.url + "/api/v1/session/pingsession", headers=morpheus_mock.headers(), timeout=10)
"""
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "--morpheus-record", "contract.json")
    result.assert_outcomes(passed=4)
    names = sorted(sequence["name"] for sequence in read_recording(pytester.path / "contract.json")["sequences"])
    assert names == [f"test_four.py::test_ping[{number}]" for number in range(4)]
    assert list(pytester.path.glob("*.part")) == []  # the workers' parts are merged and gone


async def _no_session(request: Request) -> Response:
    return JSONResponse(
        {"status": "no_session", "message": "No active session found for this API key", "success": False}
    )


async def _models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": []})


async def _broken_close(request: Request) -> Response:
    return HTMLResponse("<html>down</html>", status_code=500)


def test_a_target_whose_close_is_broken_fails_each_sequence_in_one_line(
    recording: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = Starlette(
        routes=[
            Route(PING, _no_session, methods=["POST"]),
            Route("/api/v1/models", _models),
            Route("/api/v1/session/closesession", _broken_close, methods=["POST"]),
        ]
    )
    with LiveServer(app) as server:
        given = ["--base-url", server.url, "--api-key", MOCK_KEYS[0], "--rate-limit", "0"]
        assert contract_main(["verify", str(recording), *given]) == 1
    out = capsys.readouterr().out
    assert out.count("cleaning the keys before the first step: AnswerError: POST /api/v1/session/closesession ") == 3
    assert "answered 500, expected 200: <html>down</html>" in out
    assert "teardown: sk-Contr1…: POST /api/v1/session/closesession answered 500" in out
