"""The store package's one exception root, `StoreError`, and its kinds.

The in-memory implementations never raise them; a shared store (Redis) raises nothing else. The web
layer answers a `StoreError` in the gateway's own shape without knowing which store failed.
"""

from __future__ import annotations


class StoreError(Exception):
    """Root of every error of the shared store."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or used; the message says where and why."""


class StoreBusy(StoreError):
    """An optimistic transaction met a conflict on every attempt."""
