"""Injected randomness: session ids and transaction hashes, reproducible under a seed."""

from __future__ import annotations

import random
import secrets
import threading


class IdSource:
    """Produces `"0x" + 64 lowercase hex` values; the same seed gives the same sequence.

    With `seed=None` the values come from `secrets` and are not reproducible.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._random = None if seed is None else random.Random(seed)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IdSource(seed={self.seed!r})"

    def session_id(self) -> str:
        """A new session id (a Go `common.Hash` as the proxy-router marshals it)."""
        return self._hash()

    def tx_hash(self) -> str:
        """A new transaction hash (as in the proxy-router's `{"tx": ...}` replies)."""
        return self._hash()

    def _hash(self) -> str:
        if self._random is None:
            return "0x" + secrets.token_hex(32)
        with self._lock:
            return f"0x{self._random.getrandbits(256):064x}"
