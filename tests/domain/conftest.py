"""Factories shared by the domain tests: a fake clock, seeded ids and a session book."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mockserver.domain import FakeClock, IdSource, InMemoryStore, SessionBook

KEY = "sk-AbC123"
OTHER_KEY = "sk-XyZ789"
MISTRAL = "0x8e5c0a7b3f9d2e1c6a4b8f0d3e7c9a1b5f2d6e0c4a8b3f7d1e9c5a2b6f0d4e8c"
LLAMA = "0x2f6d1e9c5a2b6f0d4e8c8e5c0a7b3f9d2e1c6a4b8f0d3e7c9a1b5f2d6e0c4a8b"
BID = "0x" + "b1d" * 21 + "0"
FULL_KEY = KEY + "." + "0123456789abcdef" * 4
T0 = 1_767_225_600.0

BookFactory = Callable[..., SessionBook]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def make_book(clock: FakeClock, store: InMemoryStore) -> BookFactory:
    def make(**options: int) -> SessionBook:
        return SessionBook(store, clock, IdSource(7), **options)

    return make


@pytest.fixture
def book(make_book: BookFactory) -> SessionBook:
    return make_book()
