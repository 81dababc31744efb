"""The mock's configuration: flags, environment variables, keys files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mockserver.config import (
    ENV_PREFIX,
    Config,
    ConfigError,
    SelfCheck,
    build_parser,
    config_from_args,
    log_config,
    options,
    problems,
    split_list,
    startup_warnings,
)
from mockserver.domain import DomainError, immediate
from mockserver.web.app import create_app
from mockserver.web.errors import WebError
from mockserver.web.state import load_keys
from tests.conftest import KEY, KEY2


def test_defaults_bind_to_loopback() -> None:
    config = config_from_args([], {})
    assert config == Config()
    assert (config.host, config.port, config.admin, config.self_check) == ("127.0.0.1", 8000, False, SelfCheck.LOG)


def test_every_flag_is_read(tmp_path: Path) -> None:
    argv = [
        "--host", "0.0.0.0", "--port", "0", "--key", KEY, "--key", KEY2, "--keys", str(tmp_path / "k"),
        "--models", str(tmp_path / "m"), "--bids", str(tmp_path / "b"), "--seed", "5", "--accept-any-key",
        "--revoked-keys-work", "--admin", "--admin-token", "t", "--self-check", "raise", "--no-fallback-note",
        "--min-session-duration", "0", "--enforce-https", "--log-level", "debug", "--chain-latency", "0.5",
    ]  # fmt: skip
    assert config_from_args(argv, {}) == Config(
        host="0.0.0.0",
        port=0,
        keys=(KEY, KEY2),
        keys_file=tmp_path / "k",
        models_file=tmp_path / "m",
        bids_file=tmp_path / "b",
        seed=5,
        accept_any_key=True,
        revoked_keys_work=True,
        admin=True,
        admin_token="t",
        self_check=SelfCheck.RAISE,
        fallback_key_note=False,
        min_session_duration=0,
        chain_latency=0.5,
        enforce_https=True,
        log_level="debug",
    )


def test_environment_variables_are_defaults_that_flags_override() -> None:
    environ = {
        "MORPHEUS_MOCK_PORT": "9001",
        "MORPHEUS_MOCK_KEY": f"{KEY} {KEY2}",
        "MORPHEUS_MOCK_SEED": "9",
        "MORPHEUS_MOCK_ADMIN": "yes",
        "MORPHEUS_MOCK_ACCEPT_ANY_KEY": "1",
        "MORPHEUS_MOCK_ADMIN_TOKEN": "tok",
    }
    config = config_from_args([], environ)
    assert (config.port, config.keys, config.seed, config.admin, config.accept_any_key) == (
        9001,
        (KEY, KEY2),
        9,
        True,
        True,
    )
    assert config.admin_token == "tok"
    assert config_from_args(["--port", "9002"], environ).port == 9002


def test_a_bad_boolean_environment_variable_stops_the_start() -> None:
    with pytest.raises(ConfigError, match="MORPHEUS_MOCK_ADMIN='maybe'"):
        config_from_args([], {"MORPHEUS_MOCK_ADMIN": "maybe"})


def test_keys_file_holds_keys_legacy_prefixes_and_revoked_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    revoked = "sk-AbC123." + "f" * 64  # shares the prefix of KEY: revoking it must not revoke KEY
    orphan = "sk-NoUser." + "a" * 64
    path.write_text(f"# team keys\n{KEY}\n\nlegacy sk-Legacy  # old style\nrevoked {revoked}\norphan {orphan}\n")
    registry = load_keys(Config(keys_file=path))
    assert immediate(registry.authenticate(f"Bearer {KEY}")) == "sk-AbC123"
    assert immediate(registry.authenticate("sk-Legacy.whatever")) == "sk-Legacy"
    assert {"prefix": "sk-AbC123", "legacy": False, "revoked": True, "orphan": False} in immediate(registry.describe())
    with pytest.raises(DomainError, match="API key not associated with a valid user"):
        immediate(registry.authenticate(f"Bearer {orphan}"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sk-bad\n", "line 1: API key 'sk-bad'"),
        (f"{KEY}\nlegacy a b\n", "line 2: expected KEY, 'legacy PREFIX', 'revoked KEY' or 'orphan KEY'"),
    ],
)
def test_a_bad_keys_file_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(content)
    with pytest.raises(WebError, match=message):
        load_keys(Config(keys_file=path))


def test_a_missing_keys_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WebError, match=r"keys file .*nope\.txt: No such file or directory"):
        load_keys(Config(keys_file=tmp_path / "nope.txt"))


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (Config(workers=2), "--workers 2 needs --store redis://"),
        (Config(workers=0), "--workers must be at least 1"),
        (Config(max_body_size=-1), "--max-body-size must be at least 0"),
        (Config(chain_latency=-1), "--chain-latency: expected a number of seconds from 0 to 60, got -1"),
    ],
)
def test_impossible_configurations_are_refused(config: Config, problem: str) -> None:
    assert any(problem in text for text in problems(config))
    with pytest.raises(WebError, match=re.escape(problem)):
        create_app(config)


def test_a_redis_store_with_workers_is_a_possible_configuration() -> None:
    assert problems(Config(workers=2, store="redis://r/0")) == []


def test_the_issue_7_flags_are_read() -> None:
    config = config_from_args(
        [
            "--max-body-size",
            "10",
            "--store",
            "redis://r/1",
            "--workers",
            "3",
            "--journal-size",
            "5",
            "--history-size",
            "6",
        ],
        {},
    )
    assert (config.max_body_size, config.store, config.workers, config.journal_size, config.history_size) == (
        10, "redis://r/1", 3, 5, 6,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--port", "70000"], {}, "--port: expected a whole number from 0 to 65535, got '70000'"),
        (["--port", "x"], {}, "--port: expected a whole number from 0 to 65535, got 'x'"),
        ([], {"MORPHEUS_MOCK_PORT": "abc"}, "MORPHEUS_MOCK_PORT: expected a whole number from 0 to 65535, got 'abc'"),
        (["--workers", "0"], {}, "--workers: expected a whole number of at least 1, got '0'"),
        ([], {"MORPHEUS_MOCK_WORKERS": "0"}, "MORPHEUS_MOCK_WORKERS: expected a whole number of at least 1, got '0'"),
        (["--max-body-size", "-1"], {}, "--max-body-size: expected a whole number of at least 0, got '-1'"),
        (["--journal-size", "0"], {}, "--journal-size: expected a whole number of at least 1"),
        ([], {"MORPHEUS_MOCK_SEED": "seven"}, "MORPHEUS_MOCK_SEED: expected a whole number of at least 0, got 'seven'"),
        (
            ["--chain-latency", "61"],
            {},
            "--chain-latency: expected a number of seconds from 0 to 60, got '61'",
        ),
        ([], {"MORPHEUS_MOCK_CHAIN_LATENCY": "soon"}, "MORPHEUS_MOCK_CHAIN_LATENCY: expected a number of seconds"),
        (["--self-check", "loud"], {}, "--self-check: invalid choice: 'loud'"),
        (["--nope"], {}, "unrecognized arguments: --nope"),
        (
            [],
            {"MORPHEUS_MOCK_SELF_CHECK": "loud"},
            "MORPHEUS_MOCK_SELF_CHECK: invalid choice: 'loud' (choose from 'raise', 'log', 'off')",
        ),
        (
            [],
            {"MORPHEUS_MOCK_LOG_LEVEL": "chatty"},
            "MORPHEUS_MOCK_LOG_LEVEL: invalid choice: 'chatty' (choose from 'critical', 'error'",
        ),
    ],
)
def test_a_bad_flag_or_variable_is_one_line_that_names_it(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        config_from_args(argv, environ)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_every_multi_value_variable_takes_commas_and_spaces() -> None:
    key_a, key_b, key_c = ("sk-AbC123." + "0" * 64, "sk-XyZ789." + "1" * 64, "sk-Qqq111." + "2" * 64)
    config = config_from_args([], {"MORPHEUS_MOCK_KEY": f"{key_a}, {key_b} ,{key_c}"})
    assert config.keys == (key_a, key_b, key_c)
    assert split_list(" a,b  c,, ") == ["a", "b", "c"]
    assert split_list(None) == []


def test_empty_numeric_variables_mean_the_default() -> None:
    config = config_from_args([], {"MORPHEUS_MOCK_PORT": " ", "MORPHEUS_MOCK_SEED": ""})
    assert (config.port, config.seed) == (8000, None)
    assert config_from_args([], {"MORPHEUS_MOCK_PORT": "0"}).port == 0


def test_a_mock_with_no_key_warns_and_names_both_ways_out() -> None:
    (warning,) = startup_warnings(Config(), 0)
    assert "--key" in warning
    assert "--accept-any-key" in warning
    assert startup_warnings(Config(), 1) == []
    assert startup_warnings(Config(accept_any_key=True), 0) == []


def test_the_log_configuration_is_uvicorns_plus_the_mocks_own_loggers() -> None:
    from uvicorn.config import LOGGING_CONFIG

    config = log_config("debug")
    assert config["loggers"]["mockserver"] == {"handlers": ["mockserver"], "level": "DEBUG", "propagate": False}
    assert config["handlers"]["mockserver"]["stream"] == "ext://sys.stderr"
    assert config["loggers"]["uvicorn.error"] == LOGGING_CONFIG["loggers"]["uvicorn.error"]
    assert "mockserver" not in LOGGING_CONFIG["loggers"]  # uvicorn's own dict is left as it was


def test_automation_is_on_by_default_and_turned_off_by_flag_or_variable() -> None:
    assert config_from_args([], {}).automation is True
    assert config_from_args(["--automation", "off"], {}).automation is False
    assert config_from_args([], {"MORPHEUS_MOCK_AUTOMATION": "off"}).automation is False
    assert config_from_args(["--automation", "on"], {"MORPHEUS_MOCK_AUTOMATION": "off"}).automation is True
    with pytest.raises(
        ConfigError, match=r"MORPHEUS_MOCK_AUTOMATION: invalid choice: 'no' \(choose from 'on', 'off'\)"
    ):
        config_from_args([], {"MORPHEUS_MOCK_AUTOMATION": "no"})


def test_key_flags_replace_the_keys_of_the_variable_as_every_option_wins_over_its_variable() -> None:
    key_a, key_b, key_c = ("sk-AbC123." + "0" * 64, "sk-XyZ789." + "1" * 64, "sk-Qqq111." + "2" * 64)
    environ = {"MORPHEUS_MOCK_KEY": key_a}
    assert config_from_args(["--key", key_b, "--key", key_c], environ).keys == (key_b, key_c)
    assert config_from_args([], environ).keys == (key_a,)


def _readme_option_rows() -> list[list[str]]:
    """The cells of the README's table of the mock's options (flags / variables / meaning)."""
    lines = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    start = lines.index("| option | environment | meaning |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("| `--"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_the_readme_option_table_is_the_field_table() -> None:
    """Every option of `Config`'s table is a row of the README: its flag, its variable beside it, and its default
    (when the help says one) in the row's text; and the README lists no option the mock does not have."""
    table = {option.flag: (option, each.default) for each, option in options()}
    listed = []
    for flags_cell, variables_cell, meaning in _readme_option_rows():
        flags = re.findall(r"`(--[a-z-]+)", flags_cell)
        variables = [
            name if name.startswith(ENV_PREFIX) else ENV_PREFIX + name.removeprefix("_")
            for name in re.findall(r"`((?:MORPHEUS_MOCK)?_[A-Z_]+)", variables_cell)
        ]
        assert [table[flag][0].variable for flag in flags] == variables, flags_cell
        for flag in flags:
            option, default = table[flag]
            shown = option.shown(default)
            assert shown is None or shown in meaning, (flag, shown, meaning)
        listed += flags
    assert sorted(listed) == sorted(table)  # every option once


def test_every_option_names_its_variable_and_default_in_the_help() -> None:
    helped = " ".join(build_parser({}).format_help().split())
    for each, option in options():
        assert " ".join(option.describe(each.default).split()) in helped
        assert option.variable in option.describe(each.default)
    assert "(default 8000; 0 = any free) (MORPHEUS_MOCK_PORT)" in helped
    assert "raise, log or off (default log)" in helped
