"""examples/session-app, a user's project (an OpenAI-SDK client of the gateway), passes its own tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "session-app"


def test_the_example_project_passes_its_tests_through_the_fixture(pytester: pytest.Pytester) -> None:
    for name in ("morpheus_app.py", "test_morpheus_app.py", "pytest.ini"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=5)


def test_the_readme_example_runs_as_written(pytester: pytest.Pytester) -> None:
    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    section = readme.split("## Testing your application", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    pytester.makepyfile(test_readme=code)
    pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-W", "error").assert_outcomes(passed=1)
