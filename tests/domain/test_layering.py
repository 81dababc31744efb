"""The domain's public surface and its one dependency rule: the standard library only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mockserver import domain
from tests.imports import imported_modules

DOMAIN = Path(domain.__file__).parent
MODULES = sorted(DOMAIN.glob("*.py"))


def test_layering_all_lists_exactly_the_public_names() -> None:
    public = [
        name for name, obj in vars(domain).items() if not name.startswith("_") and not isinstance(obj, ModuleType)
    ]
    assert sorted(domain.__all__) == sorted(public)
    assert all(
        getattr(domain, name).__module__.startswith("mockserver.domain")
        for name in domain.__all__
        if callable(getattr(domain, name))
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_layering_domain_imports_only_stdlib_and_itself(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or name.startswith("mockserver.domain") or top == "__future__", name


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_layering_every_module_has_a_one_line_docstring(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring
    assert docstring.splitlines()[0].endswith(".")
