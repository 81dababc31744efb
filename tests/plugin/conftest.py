"""The kit as a user installs it: its wheel, built once per test session from this checkout and
pip-installed into a fresh virtualenv. The kit itself comes only from the wheel; its dependencies,
installed from the same pyproject.toml by `make install`, are lent to the fresh virtualenv by a .pth
file (and its `pip` never reaches an index), so the proof costs seconds, not a download of everything."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIP = """#!/bin/sh
# the fresh virtualenv's pip: the checkout's, aimed at this interpreter, never at an index
exec {python} -m pip --python "$(dirname "$0")/python" "$@" --no-index --quiet
"""
# pytest's own script, as `pip install` of the kit with its dependencies would leave it
PYTEST = """#!/bin/sh
exec "$(dirname "$0")/python" -m pytest "$@"
"""


@dataclass(frozen=True)
class Kit:
    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def environ(self, **extra: str) -> dict[str, str]:
        """An environment in which `pip`, `pytest`, `morpheus-contract` and `morpheus-mock` are the kit's."""
        inherited = {name: value for name, value in os.environ.items() if not name.startswith("MORPHEUS_")}
        return {**inherited, "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", **extra}


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """The kit's wheel pip-installed into a fresh virtualenv (once per test session)."""
    folder = tmp_path_factory.mktemp("kit")
    dist, venv = folder / "dist", folder / "venv"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, ROOT)
    (wheel,) = dist.glob("morpheus_contract_kit-*.whl")
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    for name, script in (("pip", PIP.format(python=sys.executable)), ("pytest", PYTEST)):
        (venv / "bin" / name).write_text(script)
        (venv / "bin" / name).chmod(0o755)
    fresh = Path(
        run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    )
    (fresh / "kit-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(venv / "bin" / "pip", "install", "--no-deps", wheel)
    return Kit(wheel, venv)
