"""The mock's configuration: one frozen object, built from flags and environment at the edge."""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from mockserver.logbatch import LOG_FORMAT

ENV_PREFIX = "MORPHEUS_MOCK_"
N = TypeVar("N", int, float)


class SelfCheck(Enum):
    """What the mock does when one of its own responses breaks the spec."""

    RAISE = "raise"  # tests: a violation is an exception
    LOG = "log"  # serving: a violation is logged loudly
    OFF = "off"


@dataclass(frozen=True)
class Config:
    """Everything the mock is told at start; passed explicitly to `create_app`."""

    host: str = "127.0.0.1"
    port: int = 8000
    keys: tuple[str, ...] = ()
    keys_file: Path | None = None
    models_file: Path | None = None
    bids_file: Path | None = None
    seed: int | None = None
    accept_any_key: bool = False
    revoked_keys_work: bool = False
    automation: bool = True  # the gateway's AUTOMATION_FEATURE_ENABLED (chat and embeddings may open sessions)
    admin: bool = False
    admin_token: str | None = None
    self_check: SelfCheck = SelfCheck.LOG
    fallback_key_note: bool = True
    min_session_duration: int = 300
    chain_latency: float = 0.05  # seconds the simulated chain takes to open a bid session (parallel bids collide)
    retry_pause: bool = True  # wait out the gateway's pauses between its upstream attempts (chat 1 s, embeddings 1+2 s)
    enforce_https: bool = False
    max_body_size: int = 1_048_576  # bytes; 0: no limit
    store: str | None = None  # redis://HOST:PORT/N: sessions shared by several workers and hosts
    workers: int = 1
    journal_size: int = 1000
    history_size: int = 1000
    log_level: str = "info"
    record: Path | None = None  # write the contract of what clients do to this file (`morpheus-contract verify`)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A flag or environment variable the mock cannot use; its text is one line that says what to fix."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (a ConfigError), not the usage text and a second line."""

    def error(self, message: str) -> NoReturn:
        said = message.removeprefix("argument ")  # `--port: expected ...`, as its variable's `MORPHEUS_MOCK_PORT: ...`
        raise ConfigError(f"{said} (morpheus-mock --help lists the options)")


@dataclass(frozen=True)
class Whole:
    """A whole-number option and its allowed range (`high` None: no upper bound)."""

    low: int
    high: int | None = None

    def parse(self, text: str) -> int:
        """`text` as a whole number in range; ValueError with a message that names the range."""
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or value < self.low or (self.high is not None and value > self.high):
            raise ValueError(f"expected {self.describe()}, got {text!r}")
        return value

    def describe(self) -> str:
        if self.high is None:
            return f"a whole number of at least {self.low}"
        return f"a whole number from {self.low} to {self.high}"

    def flag(self, text: str) -> int:
        """argparse's `type=`: the same check, reported by argparse as `argument --flag: ...`."""
        return _flag_value(self.parse, text)


@dataclass(frozen=True)
class Seconds:
    """A number of seconds (fractions allowed) and its allowed range."""

    low: float
    high: float

    def parse(self, text: str) -> float:
        """`text` as seconds in range; ValueError with a message that names the range."""
        try:
            value = float(text.strip())
        except ValueError:
            value = math.nan
        if not self.low <= value <= self.high:  # NaN is in no range
            raise ValueError(f"expected {self.describe()}, got {text!r}")
        return value

    def describe(self) -> str:
        return f"a number of seconds from {self.low:g} to {self.high:g}"

    def flag(self, text: str) -> float:
        return _flag_value(self.parse, text)


def _flag_value(parse: Callable[[str], N], text: str) -> N:
    """`parse(text)`, its ValueError turned into argparse's, which reports it as `argument --flag: ...`."""
    try:
        return parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


PORT, POSITIVE, NOT_NEGATIVE = Whole(0, 65535), Whole(1), Whole(0)
CHAIN_LATENCY = Seconds(0, 60)


def split_list(value: str | None) -> list[str]:
    """A multi-value environment variable: items separated by commas and/or white space."""
    return (value or "").replace(",", " ").split()


def _env_flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(ENV_PREFIX + name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise ConfigError(f"{ENV_PREFIX}{name}={value!r}: use 1/0, true/false, yes/no or on/off")
    return value in _TRUE


def _env_number(environ: Mapping[str, str], name: str, kind: Whole | Seconds, default: float | None) -> float | None:
    raw = environ.get(ENV_PREFIX + name, "").strip()
    if not raw:
        return default
    try:
        return kind.parse(raw)
    except ValueError as error:
        raise ConfigError(f"{ENV_PREFIX}{name}: {error}") from None


def _env_choice(environ: Mapping[str, str], name: str, choices: list[str], default: str) -> str:
    value = environ.get(ENV_PREFIX + name, "").strip() or default
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)  # as argparse says it of the flag
        raise ConfigError(f"{ENV_PREFIX}{name}: invalid choice: {value!r} (choose from {listed})")
    return value


LOG_LEVELS = ["critical", "error", "warning", "info", "debug"]


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; every flag's default comes from its MORPHEUS_MOCK_* environment variable.

    Raises:
        ConfigError: an environment variable holds a value its option cannot take.
    """

    def env(name: str, default: str | None = None) -> str | None:
        return environ.get(ENV_PREFIX + name, default)

    def whole(flag: str, name: str, kind: Whole, default: int | None, text: str) -> None:
        value = _env_number(environ, name, kind, default)
        add(flag, type=kind.flag, default=value, metavar="N", help=f"{text} ({ENV_PREFIX}{name})")

    parser = _Parser(
        prog="morpheus-mock",
        description="A stateful mock of the Morpheus API Gateway session API (release v1.14.0).",
        epilog=f"Every option can also be set by an environment variable {ENV_PREFIX}<OPTION> "
        "(for example MORPHEUS_MOCK_PORT=9000, MORPHEUS_MOCK_KEY='sk-... sk-...', MORPHEUS_MOCK_ADMIN=1); "
        "multi-value variables take items separated by commas or spaces.",
    )
    add = parser.add_argument
    add("--host", default=env("HOST", "127.0.0.1"), help="address to bind (default 127.0.0.1)")
    whole("--port", "PORT", PORT, 8000, "port (default 8000; 0 = any free)")
    add(
        "--key",
        action="append",
        dest="keys",
        metavar="KEY",
        help="a full API key (sk-XXXXXX.<64 hex>); repeatable; given, the keys of MORPHEUS_MOCK_KEY are not used",
    )
    for flag, text in (
        (
            "--keys",
            "a keys file: one key per line; 'legacy sk-XXXXXX' for a prefix-only key; 'revoked KEY'; "
            "'orphan KEY' for a key with no user",
        ),
        (
            "--models",
            'the model table, JSON: {"default": NAME, "models": [items in the /api/v1/models shape]} '
            "(example: examples/models.json; the wheel ships it as mockserver/examples/models.json)",
        ),
        (
            "--bids",
            'the bid table, JSON: {"strict": BOOL, "bids": [...]} (example: examples/bids.json, in the wheel '
            "mockserver/examples/bids.json)",
        ),
    ):
        name = flag.removeprefix("--")
        add(flag, type=Path, dest=f"{name}_file", default=env(name.upper()), metavar="FILE", help=text)
    whole("--seed", "SEED", NOT_NEGATIVE, None, "make session ids reproducible")
    add(
        "--accept-any-key",
        action="store_true",
        default=_env_flag(environ, "ACCEPT_ANY_KEY"),
        help="accept every well-formed key (quick starts)",
    )
    add(
        "--revoked-keys-work",
        action="store_true",
        default=_env_flag(environ, "REVOKED_KEYS_WORK"),
        help="historical v1.14.0 behaviour: revoked keys still authenticate (default: 401 Invalid API key)",
    )
    add(
        "--automation",
        choices=["on", "off"],
        default=_env_choice(environ, "AUTOMATION", ["on", "off"], "on"),
        help="the gateway's system-wide session automation: off, chat completions that need a new session "
        "answer 403, embeddings and a modelsession with sessionDuration 0 a 500 (default on; MORPHEUS_MOCK_AUTOMATION)",
    )
    add("--admin", action="store_true", default=_env_flag(environ, "ADMIN"), help="enable the /__admin API")
    add("--admin-token", default=env("ADMIN_TOKEN"), help="require this token (X-Admin-Token) on /__admin")
    add(
        "--self-check",
        choices=[mode.value for mode in SelfCheck],
        default=_env_choice(environ, "SELF_CHECK", [mode.value for mode in SelfCheck], "log"),
        help="validate every response against the spec: raise, log (default) or off",
    )
    add(
        "--no-fallback-note",
        action="store_true",
        default=_env_flag(environ, "NO_FALLBACK_NOTE"),
        help="answer as a gateway with its own signing key (no 'note' on bidsession/approve)",
    )
    add(
        "--no-retry-pause",
        action="store_true",
        default=_env_flag(environ, "NO_RETRY_PAUSE"),
        help="skip the gateway's pauses between its proxy-router attempts (chat 1 s, embeddings 1 s then 2 s); "
        "the attempts are still made and journaled",
    )
    whole(
        "--min-session-duration",
        "MIN_SESSION_DURATION",
        NOT_NEGATIVE,
        300,
        "shortest duration the simulated chain accepts (default 300 s; 0 = no limit)",
    )
    add(
        "--chain-latency",
        type=CHAIN_LATENCY.flag,
        default=_env_number(environ, "CHAIN_LATENCY", CHAIN_LATENCY, 0.05),
        metavar="SECONDS",
        help="how long the simulated chain takes to open a bid session: parallel bidsessions of one key "
        "that arrive within it collide as on the gateway (default 0.05; MORPHEUS_MOCK_CHAIN_LATENCY)",
    )
    add(
        "--enforce-https",
        action="store_true",
        default=_env_flag(environ, "ENFORCE_HTTPS"),
        help="answer plain HTTP to a non-local host with the gateway's 426, as the gateway did",
    )
    whole(
        "--max-body-size",
        "MAX_BODY_SIZE",
        NOT_NEGATIVE,
        1_048_576,
        "refuse request bodies over this many bytes with 413 (default 1 MiB; 0 = no limit)",
    )
    add(
        "--store",
        default=env("STORE"),
        metavar="URL",
        help="keep sessions in Redis (redis://HOST:PORT/N) so several workers and hosts act as one gateway",
    )
    whole("--workers", "WORKERS", POSITIVE, 1, "worker processes (more than one needs --store)")
    whole("--journal-size", "JOURNAL_SIZE", POSITIVE, 1000, "requests the admin journal keeps (default 1000)")
    whole("--history-size", "HISTORY_SIZE", POSITIVE, 1000, "ended sessions the admin history keeps (default 1000)")
    add(
        "--log-level",
        default=_env_choice(environ, "LOG_LEVEL", LOG_LEVELS, "info"),
        choices=LOG_LEVELS,
        help="info (default): one line per request (method, path, status, key prefix, time); warning: none",
    )
    add(
        "--record",
        type=Path,
        default=env("RECORD"),
        metavar="FILE",
        help="record every gateway call and its answer, by key or X-Morpheus-Scenario header, to FILE "
        "(a contract for `morpheus-contract verify FILE`)",
    )
    return parser


def config_from_args(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """Flags win over environment variables, which win over defaults.

    Raises:
        ConfigError: a bad flag or environment variable (one line that says which, and what it takes).
    """
    args = build_parser(environ).parse_args(list(argv))
    return Config(
        host=args.host,
        port=args.port,
        keys=tuple(args.keys or split_list(environ.get(ENV_PREFIX + "KEY"))),  # an option wins over its variable
        keys_file=args.keys_file,
        models_file=args.models_file,
        bids_file=args.bids_file,
        seed=args.seed,
        accept_any_key=args.accept_any_key,
        revoked_keys_work=args.revoked_keys_work,
        automation=args.automation == "on",
        admin=args.admin,
        admin_token=args.admin_token or None,
        self_check=SelfCheck(args.self_check),
        fallback_key_note=not args.no_fallback_note,
        retry_pause=not args.no_retry_pause,
        min_session_duration=args.min_session_duration,
        chain_latency=args.chain_latency,
        enforce_https=args.enforce_https,
        max_body_size=args.max_body_size,
        journal_size=args.journal_size,
        history_size=args.history_size,
        store=args.store or None,
        workers=args.workers,
        log_level=args.log_level,
        record=args.record,
    )


LOOPBACK = ("127.", "localhost", "::1")


def problems(config: Config) -> list[str]:
    """Why the mock must refuse to start with this configuration (empty: it may start)."""
    found = []
    if config.admin and config.admin_token is None and not config.host.startswith(LOOPBACK):
        found.append(
            f"--admin on {config.host} (not loopback) needs --admin-token: anyone who reaches the port "
            "could reset state, add keys and move the clock"
        )
    if config.workers > 1 and config.store is None:
        found.append(f"--workers {config.workers} needs --store redis://...: each worker would keep its own sessions")
    if config.record is not None and config.workers > 1:
        found.append(f"--record needs one worker (got --workers {config.workers}): each would write its own file")
    if config.workers < 1:
        found.append(f"--workers must be at least 1, got {config.workers}")
    if config.max_body_size < 0:
        found.append(f"--max-body-size must be at least 0, got {config.max_body_size}")
    if not CHAIN_LATENCY.low <= config.chain_latency <= CHAIN_LATENCY.high:
        found.append(f"--chain-latency: expected {CHAIN_LATENCY.describe()}, got {config.chain_latency}")
    return found


def startup_warnings(config: Config, key_count: int) -> list[str]:
    """What a mock that may start should still tell its user (logged as warnings)."""
    if key_count or config.accept_any_key:
        return []
    return [
        "no API key is registered, so every keyed request gets 401: add one with --key sk-XXXXXX.<64 hex> "
        "(or --keys FILE), or start with --accept-any-key"
    ]


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration plus the mock's own loggers (access log, self-check, warnings) on stderr.

    Handed to uvicorn (`log_config`), so each worker process of `--workers N` logs the same way.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["mockserver"] = {"format": LOG_FORMAT}
    config["handlers"]["mockserver"] = {
        "class": "mockserver.logbatch.TurnBatchingHandler",  # a line per request, one write per loop turn
        "formatter": "mockserver",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["mockserver"] = {"handlers": ["mockserver"], "level": level.upper(), "propagate": False}
    return config
