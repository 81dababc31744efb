"""The recorded contract as users run it, from the kit's wheel in fresh folders: examples/session-app
records its contract in its own tests (`pytest --morpheus-record`), then the example CI job's verify
step replays it against a served mock (all pass), against the faithful gallery variant
`bids-like-v1.14.0` (all pass) and against each broken variant the application's calls reach (each
reported, with its test and step). The other broken variants break what the application never asks
(a lower-case `bearer`, no key, a second key, bids, races, a switch, a close, a dead ping, a body
`session_id`, a model other than the default, a header no client reads), or what its tests see only
through the fixture's own reads, which have no gateway call to replay (`embeddings-on-chat-session`:
`morpheus_mock.session()` after the embeddings)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.settings import ENV, MOCK_KEYS
from tests.plugin.conftest import ROOT, Kit
from tests.plugin.test_suite_from_an_install import JOB, shell
from tests.served import serving

EXAMPLE = ROOT / "examples" / "session-app"
# variant -> the recorded test, and its step, at which verify reports it
REACHED = {
    "500-html": ("test_exactly_one_sdk_call_fails_whatever_its_retries", 2),
    "alive-ping-unsuccessful": ("test_a_session_expires_when_the_clock_moves", 2),
    "chat-closes-session": ("test_chat_answers_on_the_keys_session", 4),
    "chat-ignores-session": ("test_chat_without_automation_is_refused", 4),
    "chat-refuses-without-session": ("test_chat_answers_on_the_keys_session", 2),
    "error-frame-flat": ("test_a_stream_that_breaks_raises", 2),
    "expired-still-alive": ("test_a_session_expires_when_the_clock_moves", 4),
    "model-echoes-resolved-id": ("test_a_session_is_opened_once_and_reused", 2),
    "no-api-key-prefix": ("test_a_session_is_opened_once_and_reused", 2),
    "ping-text-plain": ("test_a_session_expires_when_the_clock_moves", 2),
    "reuse-opens-new": ("test_a_session_is_opened_once_and_reused", 3),
    "short-session-id": ("test_a_session_is_opened_once_and_reused", 2),
    "stream-without-done": ("test_chat_answers_on_the_keys_session", 3),
}
FAITHFUL = "bids-like-v1.14.0"
_COMMENTED_RUN = re.compile(r"^\s+#\s+run: (morpheus-contract verify .+)$")
_FIRST_FAILURE = re.compile(r"^  FAILED +test_morpheus_app\.py::(\S+)\n +step (\d+):", re.MULTILINE)


@pytest.fixture(scope="module")
def contract(kit: Kit, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project, copied to a fresh folder, records its contract with the installed kit."""
    folder = tmp_path_factory.mktemp("app")
    for name in ("morpheus_app.py", "test_morpheus_app.py", "pytest.ini"):
        shutil.copy(EXAMPLE / name, folder / name)
    done = shell("pytest -q --morpheus-record contract.json", folder, kit.environ())
    assert done.returncode == 0, done.stdout[-3000:]
    assert sorted(path.name for path in folder.iterdir()) == [
        "contract.json",
        "morpheus_app.py",
        "pytest.ini",
        "test_morpheus_app.py",
    ]
    return folder / "contract.json"


def verify_command(path: Path = JOB) -> str:
    """The example CI job's verify step (commented out there), as it would run."""
    (command,) = [match[1] for line in path.read_text().splitlines() if (match := _COMMENTED_RUN.match(line))]
    return command


def _verify(kit: Kit, contract: Path, url: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """The example job's verify step in `folder`, with the recorded contract there, against `url`."""
    folder.mkdir(exist_ok=True)
    shutil.copy(contract, folder / "contract.json")
    env = kit.environ(
        **{ENV["base_url"]: url, ENV["api_keys"]: " ".join(MOCK_KEYS), ENV["allow_chat"]: "1", ENV["rate_limit"]: "0"}
    )
    return shell(verify_command(), folder, env)


def test_the_recorded_contract_passes_against_a_served_mock(kit: Kit, contract: Path, tmp_path: Path) -> None:
    with serving("--log-level", "warning", program=[str(kit.bin / "morpheus-mock")]) as mock:
        done = _verify(kit, contract, mock.url, tmp_path)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert verify_command() == "morpheus-contract verify contract.json --junitxml reports/verify.xml"
    assert "9 passed, 0 failed, 0 not verified" in done.stdout
    assert 'tests="9" failures="0" skipped="0"' in (tmp_path / "reports" / "verify.xml").read_text()


def test_the_faithful_variant_passes_and_every_broken_one_the_calls_reach_is_reported(
    kit: Kit, contract: Path, tmp_path: Path
) -> None:
    names = [FAITHFUL, *REACHED]
    command = [sys.executable, "-m", "tests.gallery.serve", *names]
    with subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as served:
        assert served.stdout is not None
        urls = dict(zip(names, json.loads(served.stdout.readline()), strict=True))
        runs = {name: _verify(kit, contract, url, tmp_path / name) for name, url in urls.items()}
        served.communicate("")
    faithful = runs.pop(FAITHFUL)
    assert faithful.returncode == 0, faithful.stdout[-4000:]
    reported = {}
    for name, done in runs.items():
        first = _FIRST_FAILURE.search(done.stdout)
        assert done.returncode == 1, f"{name}: {done.stdout[-3000:]}{done.stderr[-1000:]}"
        assert first is not None, f"{name}: {done.stdout[-3000:]}"
        reported[name] = (first[1], int(first[2]))
    assert reported == REACHED
