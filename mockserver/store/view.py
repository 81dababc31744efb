"""How a worker sees the shared state during one request: the `View` protocol and this process's `LocalView`."""

from __future__ import annotations

import contextlib
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class View(Protocol):
    """How a worker sees the shared state: `async with view.fresh(key):` wraps one request (see `RedisView`)."""

    reads_ahead: bool  # whether `fresh` wants the request's key

    def fresh(self, key: str | None = None) -> AbstractAsyncContextManager[None]: ...


class LocalView:
    """This process's own state is always fresh: a request needs no look at anything first."""

    reads_ahead = False

    def fresh(self, key: str | None = None) -> AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()
