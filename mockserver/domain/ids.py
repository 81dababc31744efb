"""Injected randomness: session ids and transaction hashes, reproducible under a seed."""

from __future__ import annotations

import hashlib
import random
import secrets
import threading

from mockserver.domain.shared import Counter


class IdSource:
    """Produces `"0x" + 64 lowercase hex` values; the same seed gives the same sequence.

    With `seed=None` the values come from `secrets` and are not reproducible. With a seed and a
    shared `counter` (several workers on one store), the n-th value the whole mock hands out is a
    hash of the seed and n: reproducible, and distinct across workers.
    """

    def __init__(self, seed: int | None = None, *, counter: Counter | None = None) -> None:
        self.seed = seed
        self._random = None if seed is None or counter is not None else random.Random(seed)
        self._counter = counter
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IdSource(seed={self.seed!r})"

    async def session_id(self) -> str:
        """A new session id (a Go `common.Hash` as the proxy-router marshals it)."""
        return await self._hash()

    async def tx_hash(self) -> str:
        """A new transaction hash (as in the proxy-router's `{"tx": ...}` replies)."""
        return await self._hash()

    async def _hash(self) -> str:
        if self._random is not None:
            with self._lock:
                return f"0x{self._random.getrandbits(256):064x}"
        if self.seed is not None and self._counter is not None:
            return "0x" + hashlib.sha256(f"{self.seed}:{await self._counter.next()}".encode()).hexdigest()
        return "0x" + secrets.token_hex(32)
