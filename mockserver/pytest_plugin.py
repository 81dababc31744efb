"""The pytest plugin (entry point `morpheus_mock`): fixtures that serve the mock gateway to a user's tests.

    def test_my_client(morpheus_mock):
        client = MyClient(base_url=morpheus_mock.api_base, api_key=morpheus_mock.key)
        with morpheus_mock.fault("create_fail", count=1, retries=True):
            ...

Loading the plugin costs a run nothing: the mock is imported, and its server started (once per test
session, on a free port of 127.0.0.1), only when a test asks for a fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mockserver.recording import Recorder
    from mockserver.testing import MockOptions, MorpheusMock, ServedMock
    from openapi import Spec

MARKER = "morpheus_mock"
IN_PROCESS_URL = "http://morpheus-mock.test"
RECORD_ENV = "MORPHEUS_RECORD"
RECORDED_BY = "pytest --morpheus-record (the morpheus_mock fixture)"
# The marker's keywords, as its help shows them: the fixture's settings of the mock's option table
# (`mockserver.config.fixture_settings`, checked by tests/plugin/test_fixture.py; not imported here, so that
# loading the plugin imports nothing of the mock).
_MARKER_KEYWORDS = {
    "keys": "[...]",
    "models": "FILE",
    "bids": "FILE",
    "seed": "N",
    "accept_any_key": "BOOL",
    "automation": "BOOL",
    "retry_pause": "BOOL",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("morpheus-mock", "Morpheus mock gateway (the morpheus_mock fixture)")
    group.addoption(
        "--morpheus-mock-key",
        action="append",
        default=[],
        dest="morpheus_mock_keys",
        metavar="KEY",
        help="a key the mock accepts (repeatable; default: one generated key). ini: morpheus_mock_keys",
    )
    group.addoption("--morpheus-mock-models", metavar="FILE", help="a models JSON file. ini: morpheus_mock_models")
    group.addoption("--morpheus-mock-bids", metavar="FILE", help="a bids JSON file. ini: morpheus_mock_bids")
    group.addoption("--morpheus-mock-seed", metavar="N", help="reproducible session ids. ini: morpheus_mock_seed")
    group.addoption(
        "--morpheus-record",
        metavar="FILE",
        help="write the contract of this run to FILE: each test's gateway calls and the mock's answers, for "
        f"`morpheus-contract verify FILE`. ini: morpheus_record; env: {RECORD_ENV}",
    )
    parser.addini("morpheus_record", "record the contract of the run to this file (relative to the ini file)")
    parser.addini("morpheus_mock_keys", "keys the Morpheus mock accepts (separated by spaces or commas)", type="args")
    parser.addini("morpheus_mock_models", "a models JSON file for the Morpheus mock (relative to the ini file)")
    parser.addini("morpheus_mock_bids", "a bids JSON file for the Morpheus mock (relative to the ini file)")
    parser.addini("morpheus_mock_seed", "a seed that makes the Morpheus mock's session ids reproducible")


def pytest_configure(config: pytest.Config) -> None:
    keywords = ", ".join(f"{keyword}={shown}" for keyword, shown in _MARKER_KEYWORDS.items())
    config.addinivalue_line(
        "markers", f"{MARKER}({keywords}): configure this test's Morpheus mock (paths relative to the test file)"
    )


@pytest.fixture(scope="session")
def morpheus_mock_server() -> Iterator[ServedMock]:
    """The server behind `morpheus_mock`: one per test session (per xdist worker), on a free loopback port."""
    from mockserver.testing import ServedMock

    server = ServedMock().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def morpheus_mock_spec() -> Spec:
    from openapi import load_spec

    return load_spec()


@pytest.fixture(scope="session")
def morpheus_mock_recorder(request: pytest.FixtureRequest) -> Iterator[Recorder | None]:
    """The run's contract recording (`--morpheus-record FILE`), written when the session ends; None: off."""
    path = _record_path(request.config)
    if path is None:
        yield None
        return
    from mockserver.recording import Recorder

    worker = getattr(request.config, "workerinput", None)  # pytest-xdist: each worker writes a part, merged at the end
    recorder = Recorder(path if worker is None else _part(path, worker["workerid"]), RECORDED_BY)
    yield recorder
    recorder.write()


def _record_path(config: pytest.Config) -> Path | None:
    """Where the run records its contract: the option, else the ini value, else MORPHEUS_RECORD; None: nowhere."""
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    path = _path(config.getoption("morpheus_record"), config.getini("morpheus_record"), base)
    if path is None and os.environ.get(RECORD_ENV):
        path = Path(os.environ[RECORD_ENV])
    return path


def _part(path: Path, worker: str) -> Path:
    return path.with_name(f"{path.name}.{worker}.part")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, the controller merges the workers' recordings into the one file."""
    config = session.config
    path = _record_path(config)
    if path is None or hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    parts = sorted(path.parent.glob(_part(path, "gw*").name), key=lambda part: int(part.name.split(".gw")[1][:-5]))
    from openapi import new_recording, read_recording, write_recording

    sequences = [sequence for part in parts for sequence in read_recording(part)["sequences"]]
    write_recording(path, new_recording(RECORDED_BY, sequences))
    for part in parts:
        part.unlink()


def _recorded(mock: MorpheusMock, recorder: Recorder | None, request: pytest.FixtureRequest) -> MorpheusMock:
    """The test's mock, its calls and controls recorded under the test's node id when the run records."""
    if recorder is not None:
        from mockserver.recording import RecordingApp

        track = recorder.track(request.node.nodeid)
        mock.record(track)
        mock.app = RecordingApp(mock.app, lambda scope, body: track)  # type: ignore[assignment]
    return mock


@pytest.fixture
def morpheus_mock_options(request: pytest.FixtureRequest) -> MockOptions:
    """This test's mock settings: the options and ini values, then its `morpheus_mock` marker."""
    from mockserver.testing import MockOptions

    settings = _configured(request.config)
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        unknown = set(marker.kwargs) - set(_MARKER_KEYWORDS)
        if marker.args or unknown:
            listed = ", ".join(_MARKER_KEYWORDS)
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes only keyword arguments: {listed}")
        settings.update(_from_marker(marker.kwargs, request.path.parent))
    return MockOptions(**settings)


@pytest.fixture
def morpheus_mock(
    morpheus_mock_server: ServedMock,
    morpheus_mock_options: MockOptions,
    morpheus_mock_spec: Spec,
    morpheus_mock_recorder: Recorder | None,
    request: pytest.FixtureRequest,
) -> Iterator[MorpheusMock]:
    """The mock gateway over HTTP, in a clean state for this test: `.url`, `.api_base`, `.key`, faults, clock."""
    from mockserver.testing import build_mock

    mock = build_mock(morpheus_mock_options, morpheus_mock_server.url, morpheus_mock_spec)
    _recorded(mock, morpheus_mock_recorder, request)
    morpheus_mock_server.switchboard.app = mock.app
    yield mock
    morpheus_mock_server.switchboard.app = None


@pytest.fixture
def morpheus_mock_asgi(
    morpheus_mock_options: MockOptions,
    morpheus_mock_spec: Spec,
    morpheus_mock_recorder: Recorder | None,
    request: pytest.FixtureRequest,
) -> MorpheusMock:
    """The same mock with no server: `httpx.Client(transport=httpx.ASGITransport(app=mock.app), base_url=mock.url)`."""
    from mockserver.testing import build_mock

    mock = build_mock(morpheus_mock_options, IN_PROCESS_URL, morpheus_mock_spec)
    return _recorded(mock, morpheus_mock_recorder, request)


def _configured(config: pytest.Config) -> dict[str, Any]:
    """Settings from the command line, else the ini file (its paths relative to the ini file's folder)."""
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    keys = config.getoption("morpheus_mock_keys") or config.getini("morpheus_mock_keys")
    return {
        "keys": tuple(part for key in keys for part in key.replace(",", " ").split()),
        "models_file": _path(config.getoption("morpheus_mock_models"), config.getini("morpheus_mock_models"), base),
        "bids_file": _path(config.getoption("morpheus_mock_bids"), config.getini("morpheus_mock_bids"), base),
        "seed": _seed(config.getoption("morpheus_mock_seed") or config.getini("morpheus_mock_seed") or None),
    }


def _path(option: str | None, ini: str, base: Path) -> Path | None:
    if option:
        return Path(option)
    return base / ini if ini else None


def _seed(value: object) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        raise pytest.UsageError(f"morpheus mock seed {value!r}: expected a whole number") from None


def _from_marker(kwargs: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The marker's settings as `MockOptions` fields: keys a tuple, files relative to the test's folder."""
    from mockserver.config import File, Keys, Number, fixture_settings

    settings: dict[str, Any] = {}
    for setting in fixture_settings():
        if setting.keyword not in kwargs:
            continue
        value = kwargs[setting.keyword]
        if isinstance(setting.kind, Keys):
            settings[setting.field] = tuple(value)
        elif isinstance(setting.kind, File):
            if value is not None:
                settings[setting.field] = folder / value
        elif isinstance(setting.kind, Number):
            settings[setting.field] = _seed(value)
        else:
            settings[setting.field] = bool(value)
    return settings
