"""The mock served by uvicorn on a loopback port: the seed documentation's own examples, and R8 under real
concurrency."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from mockserver.config import Config, SelfCheck
from mockserver.web.app import create_app
from tests.conftest import KEY, SEED_BODY
from tests.live import LiveServer

SEED_DOCS = sorted((Path(__file__).resolve().parents[1] / "seed_docs").glob("*.txt"))
PUBLISHED_HOSTS = ("https://api.mor.org", "https://example.com")


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    config = Config(keys=(KEY,), seed=3, self_check=SelfCheck.RAISE, admin=True)
    with LiveServer(create_app(config)) as live:
        yield live


def _snippet(doc: Path, start: str, end: str, after: str | None = None) -> str:
    """The text from `start` to the first `end` (that follows `after`, when given)."""
    text = doc.read_text(encoding="utf-8")
    begin = text.index(start)
    finish = text.index(end, text.index(after, begin) if after else begin)
    return text[begin : finish + len(end)]


def _as_written(snippet: str, server: LiveServer) -> str:
    """Only the host and the key are replaced; '<token>' stands for the key in the published examples."""
    for host in PUBLISHED_HOSTS:
        snippet = snippet.replace(host, server.url)
    return snippet.replace("<token>", KEY)


def _reset(server: LiveServer) -> None:
    requests.delete(f"{server.url}/__admin/state", timeout=5).raise_for_status()


@pytest.mark.parametrize("doc", SEED_DOCS, ids=lambda doc: doc.stem)
def test_the_published_curl_example_gets_a_session(server: LiveServer, doc: Path) -> None:
    _reset(server)
    command = _as_written(_snippet(doc, "curl -X POST", "}'"), server)
    run = subprocess.run(["bash", "-c", command + " --silent --show-error"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert body["success"] is True
    assert body["model"] == "string"  # the literal placeholder resolves to the default model
    assert re.fullmatch(r"0x[0-9a-f]{64}", body["session_id"])


@pytest.mark.parametrize("doc", SEED_DOCS, ids=lambda doc: doc.stem)
def test_the_published_python_example_fails_as_written_and_works_corrected(server: LiveServer, doc: Path) -> None:
    _reset(server)
    snippet = _as_written(_snippet(doc, "import requests", "print(response.text)"), server)
    # As published, the body uses JavaScript's `false`: Python stops before sending anything.
    as_written = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=30)
    assert as_written.returncode == 1
    assert "NameError: name 'false' is not defined" in as_written.stderr
    corrected = subprocess.run(
        [sys.executable, "-c", snippet.replace("false", "False")], capture_output=True, text=True, timeout=30
    )
    assert corrected.returncode == 0, corrected.stderr
    assert json.loads(corrected.stdout)["message"] == "Session created and associated with API key"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed on this machine")
@pytest.mark.parametrize("doc", SEED_DOCS, ids=lambda doc: doc.stem)
def test_the_published_fetch_example_needs_method_post_and_a_json_content_type(server: LiveServer, doc: Path) -> None:
    _reset(server)
    requests.delete(f"{server.url}/__admin/journal", timeout=5).raise_for_status()
    snippet = _as_written(_snippet(doc, "const body", "})", after="fetch("), server)
    script = snippet + ".then(r => r.json()).then(b => console.log(JSON.stringify(b)))"
    as_written = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    # fetch() defaults to GET, and a GET cannot carry a body: it rejects before any request is made.
    assert as_written.returncode != 0
    assert "Request with GET/HEAD method cannot have body" in as_written.stderr
    entries = requests.get(f"{server.url}/__admin/journal", timeout=5).json()["entries"]
    assert [entry for entry in entries if not entry["path"].startswith("/__admin")] == []
    # With method POST alone, fetch labels a string body text/plain: the gateway (and so the mock) refuses it.
    post_only = script.replace("headers: {", 'method: "POST",\nheaders: {', 1)
    refused = _node_json(post_only)
    assert refused["detail"][0]["type"] == "model_attributes_type"
    corrected = _node_json(post_only.replace("headers: {", 'headers: {\n"Content-Type": "application/json",', 1))
    assert corrected["success"] is True


def _node_json(script: str) -> Any:
    run = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _create(server: LiveServer, model: str) -> Any:
    response = requests.post(
        f"{server.url}/api/v1/session/modelsession",
        params={"model_id": model},
        json=SEED_BODY,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["session_id"]


def test_r8_parallel_creates_on_one_model_share_one_session(server: LiveServer) -> None:
    _reset(server)
    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = set(pool.map(lambda _: _create(server, "mistral-31-24b"), range(64)))
    assert len(ids) == 1
    state = requests.get(f"{server.url}/__admin/state", timeout=5).json()
    assert [entry["session"]["session_id"] for entry in state["keys"]] == list(ids)


def test_r8_racing_switches_leave_exactly_one_active_session(server: LiveServer) -> None:
    _reset(server)
    models = ["mistral-31-24b", "llama-3.3-70b"] * 32
    with ThreadPoolExecutor(max_workers=16) as pool:
        returned = set(pool.map(lambda model: _create(server, model), models))
    active = requests.get(f"{server.url}/__admin/state/sk-AbC123", timeout=5).json()["session"]
    ended = requests.get(f"{server.url}/__admin/history", params={"key": "sk-AbC123"}, timeout=5).json()["sessions"]
    ended_ids = [session["session_id"] for session in ended]
    assert active is not None
    assert active["session_id"] not in ended_ids
    assert returned <= {active["session_id"], *ended_ids}  # every id handed out is accounted for
    assert len(ended_ids) == len(set(ended_ids))
