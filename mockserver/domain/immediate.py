"""`immediate`: the result of a domain coroutine that never waits, without an event loop.

The domain's operations are coroutines because a shared store (Redis) answers over the network; state in
this process answers at once, so a caller without an event loop (the pytest fixture's control calls, start-up,
tests) can take their result here. A coroutine that does wait is a misuse: it is closed, and `NotImmediate` says so.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from mockserver.domain.errors import DomainError

T = TypeVar("T")


class NotImmediate(DomainError, RuntimeError):
    """A coroutine given to `immediate` waited for something (its state is not in this process): a misuse."""


def immediate(step: Coroutine[Any, Any, T]) -> T:
    """Run `step` to its end here and return its result.

    Raises:
        NotImmediate: `step` waited (state in a shared store): await it on the event loop instead.
    """
    try:
        step.send(None)
    except StopIteration as finished:
        result: T = finished.value
        return result
    step.close()
    raise NotImmediate(f"{step.__qualname__} waits for the shared store: await it on the event loop")
