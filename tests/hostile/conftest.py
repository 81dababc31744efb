"""The served mock every hostile test module shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.served import Served, serving


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving("--log-level", "info") as mock:
        yield mock
