"""Session ids and tx hashes: well-formed, and reproducible under a seed."""

from __future__ import annotations

import re

import pytest

from mockserver.domain import IdSource, immediate

HASH = re.compile(r"0x[0-9a-f]{64}")


@pytest.mark.parametrize("seed", [None, 0, 42], ids=["unseeded", "seed-0", "seed-42"])
def test_ids_are_0x_and_64_lowercase_hex(seed: int | None) -> None:
    ids = IdSource(seed)
    values = [immediate(ids.session_id()) for _ in range(50)] + [immediate(ids.tx_hash()) for _ in range(50)]
    assert all(HASH.fullmatch(value) for value in values)
    assert len(set(values)) == 100


def test_ids_same_seed_gives_same_sequence() -> None:
    first, second = IdSource(42), IdSource(42)
    assert [immediate(first.session_id()), immediate(first.tx_hash()), immediate(first.session_id())] == [
        immediate(second.session_id()),
        immediate(second.tx_hash()),
        immediate(second.session_id()),
    ]


def test_ids_different_seeds_differ() -> None:
    assert immediate(IdSource(1).session_id()) != immediate(IdSource(2).session_id())


def test_ids_small_values_keep_leading_zeros() -> None:
    # Seeds are searched for nothing: the format string pads, so every value is 66 characters.
    assert all(len(immediate(IdSource(seed).session_id())) == 66 for seed in range(200))


def test_ids_repr_shows_the_seed() -> None:
    assert repr(IdSource(3)) == "IdSource(seed=3)"
    assert IdSource().seed is None
