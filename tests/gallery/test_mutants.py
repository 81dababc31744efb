"""Every broken gateway of the gallery is caught by the contract suite, session-rule bugs under their rule.

A variant that survives fails the build: add a check to the suite, or a reason to the variant.
"""

from __future__ import annotations

import pytest

from tests.gallery.mutants import Result, names_its_rule, run_all, table
from tests.gallery.variants import GALLERY, VARIANTS


@pytest.fixture(scope="module")
def results() -> dict[str, Result]:
    ran = run_all(sorted(VARIANTS))
    print(table(ran))  # noqa: T201 - the mutation table belongs in the test log
    return {result.name: result for result in ran}


def test_the_gallery_has_at_least_fifteen_variants_covering_every_rule() -> None:
    assert len(GALLERY) >= 15
    assert len(VARIANTS) == len(GALLERY)
    assert {variant.rule for variant in GALLERY} >= {f"R{n}" for n in range(1, 9)}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_suite_catches_the_variant(results: dict[str, Result], name: str) -> None:
    result = results[name]
    assert result.caught, f"{name} ({VARIANTS[name].breaks}) survived the contract suite"
    assert names_its_rule(result), f"{name} was caught, but the summary says {result.named!r}"
