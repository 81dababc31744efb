"""The plugin's options, ini values and marker (run with pytester, in this process so coverage sees them)."""

from __future__ import annotations

import json
import re

import pytest

pytest_plugins = ["pytester"]

MODELS = {"default": "tiny-1b", "models": [{"id": "tiny-1b", "blockchainID": "0x" + "1" * 64, "modelType": "LLM"}]}
KEY_A = "sk-KeyAaa." + "a" * 64
KEY_B = "sk-KeyBbb." + "b" * 64

PROBE = """
from mockserver.testing import MorpheusMock

def test_probe(morpheus_mock: MorpheusMock) -> None:
    state = morpheus_mock.app.state.mock
    print("KEYS", list(morpheus_mock.keys))
    print("MODELS", [model.name for model in state.models.models()])
    print("SEED", state.config.seed)
"""


def probe(pytester: pytest.Pytester, *args: str) -> dict[str, str]:
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1)
    return {match[1]: match[2] for line in result.outlines if (match := re.search(r"(KEYS|MODELS|SEED) (.*)$", line))}


def test_ini_values_configure_the_mock(pytester: pytest.Pytester) -> None:
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "models.json").write_text(json.dumps(MODELS))
    pytester.makeini(
        f"[pytest]\nmorpheus_mock_keys = {KEY_A},{KEY_B}\n"
        "morpheus_mock_models = data/models.json\nmorpheus_mock_seed = 3\n"
    )
    assert probe(pytester) == {"KEYS": str([KEY_A, KEY_B]), "MODELS": "['tiny-1b']", "SEED": "3"}


def test_options_win_over_ini_values(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\nmorpheus_mock_keys = {KEY_A}\nmorpheus_mock_seed = 3\n")
    (pytester.path / "models.json").write_text(json.dumps(MODELS))
    found = probe(
        pytester, "--morpheus-mock-key", KEY_B, "--morpheus-mock-seed", "9", "--morpheus-mock-models", "models.json"
    )
    assert found == {"KEYS": str([KEY_B]), "MODELS": "['tiny-1b']", "SEED": "9"}


def test_defaults_one_generated_key_and_the_builtin_models(pytester: pytest.Pytester) -> None:
    found = probe(pytester)
    assert found["KEYS"] == str(["sk-Mock00." + found["KEYS"].split(".")[1][:64]])
    assert "mistral-31-24b" in found["MODELS"]
    assert found["SEED"] == "None"


def test_the_marker_wins_and_its_paths_are_relative_to_the_test_file(pytester: pytest.Pytester) -> None:
    (pytester.path / "bids.json").write_text(json.dumps({"strict": True, "bids": ["0x" + "2" * 64]}))
    (pytester.path / "models.json").write_text(json.dumps(MODELS))
    pytester.makepyfile(
        test_marked=f"""
        import pytest

        @pytest.mark.morpheus_mock(
            keys=[{KEY_A!r}], models="models.json", bids="bids.json", seed=5, accept_any_key=True
        )
        def test_marked(morpheus_mock):
            state = morpheus_mock.app.state.mock
            assert morpheus_mock.keys == ({KEY_A!r},)
            assert [model.name for model in state.models.models()] == ["tiny-1b"]
            assert state.config.seed == 5 and state.config.accept_any_key
            assert state.config.bids_file.name == "bids.json"
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("@pytest.mark.morpheus_mock('k')", "takes only keyword arguments: keys, models, bids, seed, accept_any_key"),
        ("@pytest.mark.morpheus_mock(port=1)", "takes only keyword arguments"),
        ("@pytest.mark.morpheus_mock(seed='x')", "morpheus mock seed 'x': expected a whole number"),
    ],
)
def test_a_bad_marker_is_a_clear_error(pytester: pytest.Pytester, marker: str, message: str) -> None:
    pytester.makepyfile(test_bad=f"import pytest\n\n{marker}\ndef test_bad(morpheus_mock):\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{message}*"])


def test_the_options_are_in_pytest_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("--help")
    result.stdout.fnmatch_lines(["*Morpheus mock gateway (the morpheus_mock fixture)*", "*--morpheus-mock-key=KEY*"])
    marks = pytester.runpytest_inprocess("--markers")
    marks.stdout.fnmatch_lines(["@pytest.mark.morpheus_mock(keys=*"])
