"""The storage layering: the web layer knows the store's errors and view, never Redis; only the assembly
imports the Redis package, whose modules import one another in one order; the in-memory mock runs
without redis installed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mockserver
from mockserver import store, web
from tests.imports import imported_modules

MOCKSERVER = Path(mockserver.__file__).parent
STORE = Path(store.__file__).parent
REDIS = STORE / "redis"
WEB = Path(web.__file__).parent
ASSEMBLY = STORE / "assembly.py"
# The Redis package's modules, each importing only modules before it (a clear order, no back and forth).
REDIS_ORDER = ("wire", "codecs", "transaction", "listen", "view", "store", "clock", "slots", "journal")


def _uses_redis(name: str) -> bool:
    return name.split(".")[0] == "redis" or name.startswith("mockserver.store.redis")


def _name(path: Path) -> str:
    return str(path.relative_to(MOCKSERVER.parent))


@pytest.mark.parametrize(
    "path", [p for p in sorted(MOCKSERVER.rglob("*.py")) if REDIS not in p.parents and p != ASSEMBLY], ids=_name
)
def test_layering_nothing_but_the_assembly_imports_redis(path: Path) -> None:
    assert not [name for name in imported_modules(path) if _uses_redis(name)]


def test_layering_the_assembly_imports_the_redis_package_only_when_a_store_is_named() -> None:
    body = ast.parse(ASSEMBLY.read_text(encoding="utf-8")).body  # the module's own statements, not its functions
    top = {node.module or "" for node in body if isinstance(node, ast.ImportFrom)}
    top |= {alias.name for node in body if isinstance(node, ast.Import) for alias in node.names}
    assert not [name for name in top if _uses_redis(name)]
    assert any(_uses_redis(name) for name in imported_modules(ASSEMBLY))


@pytest.mark.parametrize("path", sorted(WEB.glob("*.py")), ids=_name)
def test_layering_web_imports_only_the_store_errors_view_and_assembly(path: Path) -> None:
    stored = {name for name in imported_modules(path) if name.startswith("mockserver.store")}
    assert stored <= {"mockserver.store", "mockserver.store.assembly"}


@pytest.mark.parametrize("path", sorted(STORE.glob("*.py")), ids=_name)
def test_layering_the_store_package_imports_no_web_and_no_openapi(path: Path) -> None:
    for name in imported_modules(path):
        assert not name.startswith(("mockserver.web", "openapi", "starlette", "contracts")), name


@pytest.mark.parametrize("module", REDIS_ORDER)
def test_layering_redis_modules_import_only_the_ones_before_them(module: str) -> None:
    earlier = {f"mockserver.store.redis.{name}" for name in REDIS_ORDER[: REDIS_ORDER.index(module)]}
    inside = {name for name in imported_modules(REDIS / f"{module}.py") if name.startswith("mockserver.store.redis")}
    assert inside <= earlier


def test_layering_the_redis_order_names_every_module_of_the_package() -> None:
    assert sorted(REDIS_ORDER) == sorted(p.stem for p in REDIS.glob("*.py") if p.stem != "__init__")


BLOCKED = """
import sys
sys.modules["redis"] = None  # `import redis` raises ImportError from here on
from starlette.testclient import TestClient
from mockserver.config import Config
from mockserver.web.app import create_app
with TestClient(create_app(Config())) as client:
    print(client.get("/health").status_code)
"""


def test_layering_the_in_memory_mock_runs_without_redis() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "200"), done.stderr
