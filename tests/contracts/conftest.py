"""The contract suite's own test modules are imported here to drive their checks directly: their
`contract` marker is registered as the suite's plugin registers it when it runs."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "contract: a contract test (the suite's own marker, see contracts/conftest.py)")
