"""The gateway's exact validation and auth answers (a copy of shared/reference/golden)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("validation-cases.jsonl")


def load_cases() -> list[dict[str, Any]]:
    """Every golden case as its JSON object (`id`, `request`, `response`)."""
    return [json.loads(line) for line in PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
