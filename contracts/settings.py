"""What a contract run is told: target, keys and safety limits; one frozen object built from options and env."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV = {
    "base_url": "MORPHEUS_BASE_URL",
    "api_keys": "MORPHEUS_API_KEYS",
    "allow_spend": "MORPHEUS_ALLOW_SPEND",
    "max_sessions": "MORPHEUS_MAX_SESSIONS",
    "rate_limit": "MORPHEUS_RATE_LIMIT",
    "session_duration": "MORPHEUS_SESSION_DURATION",
    "bid_ids": "MORPHEUS_BID_IDS",
    "examples": "MORPHEUS_EXAMPLES",
    "stateful_runs": "MORPHEUS_STATEFUL_RUNS",
    "concurrency": "MORPHEUS_CONCURRENCY",
    "skip_rules": "MORPHEUS_SKIP_RULES",
    "allow_chat": "MORPHEUS_ALLOW_CHAT",
    "max_chats": "MORPHEUS_MAX_CHATS",
}
DEFAULT_CHAT_CAP = 30  # chat and embeddings requests a run sends to a URL (each costs tokens)
# The in-process mock's own keys (the default target); two, so that the isolation rule R7 runs.
MOCK_KEYS = (
    "sk-Contr1." + "0123456789abcdef" * 4,
    "sk-Contr2." + "fedcba9876543210" * 4,
)


@dataclass(frozen=True)
class Settings:
    """A run's settings; `base_url=None` means the in-process mock is the target."""

    base_url: str | None = None
    api_keys: tuple[str, ...] = ()
    allow_spend: bool = False
    max_sessions: int | None = None  # None: 20 against a URL, unlimited against the in-process mock
    rate_limit: float | None = None  # requests/s; None: 20/s against a URL, unlimited in-process
    session_duration: int = 300  # the shortest the chain accepts: sessions the run opens hold little stake
    bid_ids: tuple[str, ...] = ()
    examples: int = 30
    stateful_runs: int = 20
    concurrency: int = 8
    skip_rules: tuple[str, ...] = ()  # rules the user accepts not checking (--skip-rule R6)
    allow_chat: bool = False  # send chat completions and embeddings (they cost tokens on a real gateway)
    max_chats: int | None = None  # None: 30 against a URL, unlimited in-process; 0 = none

    @property
    def in_process(self) -> bool:
        return self.base_url is None

    @property
    def session_cap(self) -> int | None:
        if self.max_sessions is not None:
            return self.max_sessions or None
        return None if self.in_process else 20

    @property
    def chat_allowed(self) -> bool:
        """Chat and embeddings are sent: against the in-process mock always, against a URL on request."""
        return self.allow_chat or self.in_process

    @property
    def chat_cap(self) -> int | None:
        if self.max_chats is not None:
            return self.max_chats or None
        return None if self.in_process else DEFAULT_CHAT_CAP

    @property
    def requests_per_second(self) -> float | None:
        if self.rate_limit is not None:
            return self.rate_limit or None
        return None if self.in_process else 20.0


def env_default(name: str, environ: Mapping[str, str] = os.environ) -> str | None:
    return environ.get(ENV[name]) or None


def split_keys(value: str | None) -> tuple[str, ...]:
    """Keys from an environment variable: separated by commas or white space."""
    return tuple(part for part in (value or "").replace(",", " ").split() if part)


def key_share(keys: tuple[str, ...], index: int, count: int) -> tuple[str, ...]:
    """The keys of one of `count` parallel workers (pytest -n): an equal, disjoint share of the pool."""
    if count <= 1:
        return keys
    per_worker = len(keys) // count
    if per_worker < 1:
        raise ValueError(
            f"{count} parallel workers need at least {count} API keys (two each for R7), got {len(keys)}: "
            "pass more --api-key, or fewer workers"
        )
    return keys[index * per_worker : (index + 1) * per_worker]
