"""The example models and bids files of examples/ load, and the mock answers with them (README's command)."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from mockserver.config import config_from_args
from mockserver.web.app import create_app
from tests.conftest import KEY, SEED_BODY

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_example_tables_drive_models_and_strict_bids() -> None:
    config = config_from_args(
        ["--key", KEY, "--models", str(EXAMPLES / "models.json"), "--bids", str(EXAMPLES / "bids.json")], {}
    )
    with TestClient(create_app(config)) as client:
        models = [model["id"] for model in client.get("/api/v1/models").json()["data"]]
        assert "my-fine-tune-8b" in models
        assert len(models) == 5
        auth = {"Authorization": f"Bearer {KEY}"}
        known = "0x1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
        opened = client.post("/api/v1/session/bidsession", params={"bid_id": known}, json=SEED_BODY, headers=auth)
        assert opened.status_code == 200
        unknown = client.post(
            "/api/v1/session/bidsession", params={"bid_id": "0x" + "e" * 64}, json=SEED_BODY, headers=auth
        )
        assert unknown.status_code == 500
