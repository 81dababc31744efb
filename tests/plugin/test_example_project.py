"""examples/session-app, a user's project (an OpenAI-SDK client of the gateway), and the README's fixture example."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "session-app"


def test_the_example_project_and_the_readme_example_pass_through_the_fixture(pytester: pytest.Pytester) -> None:
    """One inner session (one server) runs the example project's 9 tests and the README's test as written."""
    for name in ("morpheus_app.py", "test_morpheus_app.py", "pytest.ini"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    section = (EXAMPLE.parents[1] / "README.md").read_text().split("## Testing your application", 1)[1]
    (pytester.path / "test_readme.py").write_text(section.split("```python\n", 1)[1].split("```", 1)[0])
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=10)
