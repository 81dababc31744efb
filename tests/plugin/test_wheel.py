"""The kit as a user gets it (its wheel, pip-installed into a fresh virtualenv: tests/plugin/conftest.py),
used from an empty folder: the user's whole project is one ten-line test file of an application against
the `morpheus_mock` fixture (a fault, the clock, the journal), found through the wheel's `pytest11` entry
point.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.plugin.conftest import Kit, run

USER_TEST = """
import requests

def test_my_app_against_the_mock(morpheus_mock):
    def open_session():  # the application: one call to the gateway
        url = morpheus_mock.api_base + "/session/modelsession?model_id=mistral-31-24b"
        body = {"sessionDuration": 600, "directPayment": False, "failover": False}
        return requests.post(url, json=body, headers=morpheus_mock.headers(), timeout=10).json()

    with morpheus_mock.fault("create_fail", count=1, retries=True):
        assert "provider unavailable" in open_session()["detail"]
    assert open_session()["success"] is True
    morpheus_mock.clock.advance(601)
    assert morpheus_mock.session()["expired"] is True
    assert [entry["status"] for entry in morpheus_mock.journal()] == [200, 500]
"""

# Runs first (files run in name order): nothing has used the fixture yet, so nothing of the mock is loaded.
PLAIN_TEST = """
import importlib.util
import sys

def test_a_test_without_the_fixture_loads_nothing_of_the_mock(request):
    assert request.config.pluginmanager.has_plugin("morpheus_mock")
    heavy = {"mockserver.testing", "mockserver.web.app", "uvicorn", "starlette", "openapi"}
    assert heavy.isdisjoint(sys.modules), heavy & set(sys.modules)
    installed = importlib.util.find_spec("mockserver").origin
    assert installed.startswith(sys.prefix), installed  # the wheel's copy, not the checkout
    assert importlib.util.find_spec("openapi").submodule_search_locations[0].startswith(sys.prefix)
"""


def test_a_fresh_folder_with_only_the_wheel_tests_an_app_with_the_fixture(kit: Kit, tmp_path: Path) -> None:
    project = tmp_path / "project"
    installed = Path(run(kit.python, "-c", "import mockserver; print(mockserver.__file__)").strip()).parents[1]
    assert (installed / "mockserver" / "py.typed").exists()
    assert (installed / "openapi" / "morpheus.yaml").exists()
    project.mkdir()
    (project / "test_app.py").write_text(textwrap.dedent(USER_TEST))
    (project / "test_0_plain.py").write_text(textwrap.dedent(PLAIN_TEST))
    result = run(kit.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", cwd=project)
    assert "2 passed" in result
    assert sorted(path.name for path in project.iterdir()) == ["test_0_plain.py", "test_app.py"]  # no litter
