"""The import rules of ARCHITECTURE.md's layer table between packages, checked over the sources (nothing is
imported): openapi/ reads the spec for everyone and imports none of them; contracts/ never imports the mock but
in its one fixture; no shipped module imports a conftest or a command line. (The domain's and the store's own rules:
tests/domain/test_layering.py, tests/web/test_layering.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.imports import imported_modules

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("openapi", "mockserver", "contracts")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


IMPORTS = {
    _module(path): imported_modules(path) for package in SHIPPED for path in sorted((ROOT / package).rglob("*.py"))
}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def importers(target: str) -> set[str]:
    """The shipped modules that import `target` or anything inside it."""
    return {module for module, names in IMPORTS.items() if any(_within(name, target) for name in names)}


# (the modules a rule is about, what they must not import, the one module allowed to all the same)
RULES = [
    ("openapi", "mockserver", None),
    ("openapi", "contracts", None),
    ("openapi", "starlette", None),
    ("mockserver", "contracts", None),
    ("mockserver.web", "redis", None),
    ("contracts", "mockserver", "contracts.inprocess"),  # the fixture that starts the in-process default target
    ("contracts", "starlette", None),
]


@pytest.mark.parametrize(("who", "forbidden", "allowed"), RULES, ids=[f"{who}-not-{what}" for who, what, _ in RULES])
def test_layering_packages_keep_to_the_table(who: str, forbidden: str, allowed: str | None) -> None:
    offenders = {module for module in importers(forbidden) if _within(module, who)} - {allowed}
    assert not offenders, f"{sorted(offenders)} import {forbidden}"


def test_layering_the_one_fixture_is_the_only_way_into_the_mock() -> None:
    assert importers("mockserver") & {module for module in IMPORTS if _within(module, "contracts")} == {
        "contracts.inprocess"
    }


@pytest.mark.parametrize("entry", ["contracts.conftest", "mockserver.__main__", "contracts.__main__"])
def test_layering_no_shipped_module_imports_a_conftest_or_a_command_line(entry: str) -> None:
    assert importers(entry) - {entry} == set()


def test_layering_the_rules_read_real_modules() -> None:
    assert {"openapi.document", "mockserver.web.app", "contracts.inprocess", "contracts.conftest"} <= set(IMPORTS)
