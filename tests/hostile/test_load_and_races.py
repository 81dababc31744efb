"""Thousands of concurrent requests over many keys, with same-key create/switch/bid/close/ping races; then every
key's state is checked against R8, the answers and the journal. Zero unexplained errors."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.served import Served, serving

KEYS = [f"sk-Load{n:02d}." + f"{n:064x}" for n in range(40)]  # accepted by --accept-any-key
OPERATIONS = ["model-a", "model-a", "model-b", "bid", "close", "ping", "ping"]
REQUESTS = 3000
UNIQUE = 'unique constraint "sessions_active_api_key_unique"'


@pytest.fixture(scope="module")
def loaded() -> Iterator[Served]:
    with serving(
        "--accept-any-key", "--journal-size", "10000", "--history-size", "10000", "--log-level", "warning"
    ) as mock:
        yield mock


def _one(session: requests.Session, url: str, key: str, operation: str) -> tuple[str, str, int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"sessionDuration": 3600}
    path, params = {
        "model-a": ("modelsession", {"model_id": "mistral-31-24b"}),
        "model-b": ("modelsession", {"model_id": "llama-3.3-70b"}),
        "bid": ("bidsession", {"bid_id": "0x01"}),
        "close": ("closesession", {}),
        "ping": ("pingsession", {}),
    }[operation]
    response = session.post(f"{url}/api/v1/session/{path}", params=params, json=body, headers=headers, timeout=30)
    return key, operation, response.status_code, response.json()


def test_thousands_of_racing_requests_leave_every_key_consistent(loaded: Served) -> None:
    chooser = random.Random(11)
    plan = [(chooser.choice(KEYS[:10] if n % 3 else KEYS), chooser.choice(OPERATIONS)) for n in range(REQUESTS)]
    # A session per thread, so each keeps one connection busy. A session shared by whichever threads took its
    # requests left a second connection idle in its pool, and one idle for uvicorn's keep-alive timeout (5 s, in
    # a slow CI run) could be closed by the server as the client sent on it: "Remote end closed connection".
    local = threading.local()

    def one(n: int) -> tuple[str, str, int, dict[str, object]]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return _one(local.session, loaded.url, *plan[n])

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(one, range(REQUESTS)))
    # The one error v1.14.0 gives under races: a bidsession meeting a parallel bid's row (observed-v1.14.0.md 2).
    collided = [a for a in answers if a[2] == 500 and a[1] == "bid" and UNIQUE in str(a[3].get("detail", ""))]
    statuses = Counter(status for _, _, status, _ in answers)
    assert statuses == Counter({200: REQUESTS - len(collided), 500: len(collided)}), statuses

    handed_out: dict[str, set[str]] = defaultdict(set)
    for key, operation, status, body in answers:
        if operation.startswith(("model", "bid")) and status == 200:
            handed_out[key].add(str(body["session_id"]))
    for key in KEYS:
        prefix = key[:9]
        active = requests.get(f"{loaded.url}/__admin/state/{prefix}", timeout=5).json()["session"]
        ended = requests.get(f"{loaded.url}/__admin/history", params={"key": prefix}, timeout=5).json()["sessions"]
        ended_ids = [session["session_id"] for session in ended]
        assert len(ended_ids) == len(set(ended_ids)), f"{prefix}: a session ended twice"
        known = set(ended_ids) | ({active["session_id"]} if active else set())
        assert handed_out[key] <= known, f"{prefix}: an id was handed out and then lost"
        assert active is None or active["session_id"] not in ended_ids, f"{prefix}: active and ended at once (R8)"
        ping = loaded.post("/api/v1/session/pingsession", key=key).json()
        assert ping.get("session_id") == (active["session_id"] if active else None)

    journal = requests.get(f"{loaded.url}/__admin/journal", params={"limit": "10000"}, timeout=5).json()["entries"]
    session_calls = [entry for entry in journal if entry["path"].startswith("/api/v1/session/")]
    assert len(session_calls) >= REQUESTS  # every request journaled (plus the pings above)
    assert {entry["status"] for entry in session_calls} <= {200, 500}
    assert sum(entry["status"] == 500 for entry in session_calls) == len(collided)
    assert "Traceback" not in loaded.log.read_text()
