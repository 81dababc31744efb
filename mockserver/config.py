"""The mock's configuration: one frozen object, built from flags and environment at the edge.

`Config`'s fields are the one table of the mock's settings: each field's default, and in its metadata
its `Option` (flag, environment variable, help, and whether the test fixture takes it). The command
line, its help, the variables, the fixture's settings (`mockserver.testing.MockOptions`, the marker)
and the README's option table all come from, or are checked against, that table.
"""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from mockserver.domain.book import BID_OPEN_SECONDS, MIN_DURATION
from mockserver.domain.store import HISTORY_LIMIT
from mockserver.logbatch import LOG_FORMAT

ENV_PREFIX = "MORPHEUS_MOCK_"
N = TypeVar("N", int, float)


class SelfCheck(Enum):
    """What the mock does when one of its own responses breaks the spec."""

    RAISE = "raise"  # tests: a violation is an exception
    LOG = "log"  # serving: a violation is logged loudly
    OFF = "off"


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
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def split_list(value: str | None) -> list[str]:
    """A multi-value environment variable: items separated by commas and/or white space."""
    return (value or "").replace(",", " ").split()


def _env_flag(environ: Mapping[str, str], variable: str) -> bool:
    value = environ.get(variable, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise ConfigError(f"{variable}={value!r}: use 1/0, true/false, yes/no or on/off")
    return value in _TRUE


def _env_number(
    environ: Mapping[str, str], variable: str, kind: Whole | Seconds, default: float | None
) -> float | None:
    raw = environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        return kind.parse(raw)
    except ValueError as error:
        raise ConfigError(f"{variable}: {error}") from None


def _env_choice(environ: Mapping[str, str], variable: str, choices: Sequence[str], default: str) -> str:
    value = environ.get(variable, "").strip() or default
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)  # as argparse says it of the flag
        raise ConfigError(f"{variable}: invalid choice: {value!r} (choose from {listed})")
    return value


# How the text of a flag or variable becomes a field's value. Each kind gives its flag's argparse settings,
# with the default its variable gives (else the field's), and turns what argparse parsed into the field's value.


@dataclass(frozen=True)
class Text:
    """A string (`metavar`: what the help calls it); an empty one is None when the field's default is."""

    metavar: str | None = None

    def settings(self, option: Option, default: Any, environ: Mapping[str, str]) -> dict[str, Any]:
        return dict(default=environ.get(option.variable, default), metavar=self.metavar)

    def value(self, parsed: Any, default: Any) -> Any:
        return (parsed or None) if default is None else parsed


@dataclass(frozen=True)
class File:
    """A path."""

    def settings(self, option: Option, default: Any, environ: Mapping[str, str]) -> dict[str, Any]:
        return dict(type=Path, default=environ.get(option.variable, default), metavar="FILE")

    def value(self, parsed: Any, default: Any) -> Any:
        return parsed


@dataclass(frozen=True)
class Number:
    """A whole number or a number of seconds, in its range."""

    range: Whole | Seconds
    metavar: str = "N"

    def settings(self, option: Option, default: Any, environ: Mapping[str, str]) -> dict[str, Any]:
        given = _env_number(environ, option.variable, self.range, default)
        return dict(type=self.range.flag, default=given, metavar=self.metavar)

    def value(self, parsed: Any, default: Any) -> Any:
        return parsed


@dataclass(frozen=True)
class Switch:
    """A flag that takes no value: on when given (or its variable is 1/true/yes/on); `negates`: it turns the
    field off (`--no-retry-pause` sets `retry_pause` False)."""

    negates: bool = False

    def settings(self, option: Option, default: Any, environ: Mapping[str, str]) -> dict[str, Any]:
        return dict(action="store_true", default=_env_flag(environ, option.variable))

    def value(self, parsed: Any, default: Any) -> Any:
        return not parsed if self.negates else parsed

    def shown(self, default: Any) -> str | None:
        return None  # off unless given: the help says what it turns on


@dataclass(frozen=True)
class Choice:
    """One of `choices`, each the value `meaning` gives it (the name itself when None)."""

    choices: tuple[str, ...]
    meaning: Callable[[str], Any] | None = None

    def settings(self, option: Option, default: Any, environ: Mapping[str, str]) -> dict[str, Any]:
        given = _env_choice(environ, option.variable, self.choices, self.shown(default))
        return dict(choices=list(self.choices), default=given)

    def value(self, parsed: Any, default: Any) -> Any:
        return parsed if self.meaning is None else self.meaning(parsed)

    def shown(self, default: Any) -> str:
        return next(choice for choice in self.choices if self.value(choice, default) == default)


class _GivenKeys(argparse.Action):
    """`--key` appends to the keys given by flag; the first one replaces the variable's (a tuple)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, flag: str | None = None) -> None:
        given = getattr(namespace, self.dest)
        setattr(namespace, self.dest, [*given, values] if isinstance(given, list) else [values])


@dataclass(frozen=True)
class Keys:
    """Repeatable full keys; given, the keys of the variable (separated by commas or spaces) are not used."""

    def settings(self, option: Option, default: Any, environ: Mapping[str, str]) -> dict[str, Any]:
        return dict(action=_GivenKeys, metavar="KEY", default=tuple(split_list(environ.get(option.variable))))

    def value(self, parsed: Any, default: Any) -> Any:
        return tuple(parsed)


Kind = Text | File | Number | Switch | Choice | Keys


@dataclass(frozen=True)
class Fixture:
    """A setting the test fixture takes: a field of `MockOptions`, the marker's keyword `name`; its default is
    the mock's, unless `own_default` (then `default`)."""

    name: str
    default: Any = None
    own_default: bool = False


@dataclass(frozen=True)
class Option:
    """How one `Config` field is set from outside: its flag, its help (`{default}` reads the field's default),
    how its text is read, and whether the test fixture takes it. Its variable is the flag's name in capitals."""

    flag: str
    help: str
    kind: Kind
    fixture: Fixture | None = None

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.flag.removeprefix("--").replace("-", "_").upper()

    def shown(self, default: Any) -> str | None:
        """The default as the help and the README say it; None when they say none."""
        if isinstance(self.kind, Switch | Choice):
            return self.kind.shown(default)
        return None if default is None or default == () else str(default)

    def describe(self, default: Any) -> str:
        return self.help.format(default=self.shown(default)) + f" ({self.variable})"


OPTION = "option"


def _option(flag: str, help: str, kind: Kind, fixture: Fixture | None = None) -> dict[str, Option]:
    """A `Config` field's metadata: its `Option`."""
    return {OPTION: Option(flag, help, kind, fixture)}


@dataclass(frozen=True)
class Config:
    """Everything the mock is told at start; passed explicitly to `create_app`. The one table of its settings."""

    host: str = field(default="127.0.0.1", metadata=_option("--host", "address to bind (default {default})", Text()))
    port: int = field(default=8000, metadata=_option("--port", "port (default {default}; 0 = any free)", Number(PORT)))
    keys: tuple[str, ...] = field(
        default=(),
        metadata=_option(
            "--key",
            "a full API key (sk-XXXXXX.<64 hex>); repeatable; given, the keys of the variable are not used",
            Keys(),
            Fixture("keys"),
        ),
    )
    keys_file: Path | None = field(
        default=None,
        metadata=_option(
            "--keys",
            "a keys file: one key per line; 'legacy sk-XXXXXX' for a prefix-only key; 'revoked KEY'; "
            "'orphan KEY' for a key with no user",
            File(),
        ),
    )
    models_file: Path | None = field(
        default=None,
        metadata=_option(
            "--models",
            'the model table, JSON: {{"default": NAME, "models": [items in the /api/v1/models shape]}} '
            "(example: examples/models.json; the wheel ships it as mockserver/examples/models.json)",
            File(),
            Fixture("models"),
        ),
    )
    bids_file: Path | None = field(
        default=None,
        metadata=_option(
            "--bids",
            'the bid table, JSON: {{"strict": BOOL, "bids": [...]}} (example: examples/bids.json, in the wheel '
            "mockserver/examples/bids.json)",
            File(),
            Fixture("bids"),
        ),
    )
    seed: int | None = field(
        default=None, metadata=_option("--seed", "make session ids reproducible", Number(NOT_NEGATIVE), Fixture("seed"))
    )
    accept_any_key: bool = field(
        default=False,
        metadata=_option(
            "--accept-any-key", "accept every well-formed key (quick starts)", Switch(), Fixture("accept_any_key")
        ),
    )
    revoked_keys_work: bool = field(
        default=False,
        metadata=_option(
            "--revoked-keys-work",
            "historical v1.14.0 behaviour: revoked keys still authenticate (default: 401 Invalid API key)",
            Switch(),
        ),
    )
    automation: bool = field(
        default=True,
        metadata=_option(
            "--automation",
            "the gateway's system-wide session automation: off, chat completions that need a new session "
            "answer 403, embeddings and a modelsession with sessionDuration 0 a 500 (default {default})",
            Choice(("on", "off"), lambda choice: choice == "on"),
            Fixture("automation"),
        ),
    )
    admin: bool = field(default=False, metadata=_option("--admin", "enable the /__admin API", Switch()))
    admin_token: str | None = field(
        default=None,
        metadata=_option("--admin-token", "require this token (X-Admin-Token) on /__admin", Text("ADMIN_TOKEN")),
    )
    self_check: SelfCheck = field(
        default=SelfCheck.LOG,
        metadata=_option(
            "--self-check",
            "validate every response against the spec: raise, log or off (default {default})",
            Choice(tuple(mode.value for mode in SelfCheck), SelfCheck),
        ),
    )
    fallback_key_note: bool = field(
        default=True,
        metadata=_option(
            "--no-fallback-note",
            "answer as a gateway with its own signing key (no 'note' on bidsession/approve)",
            Switch(negates=True),
        ),
    )
    retry_pause: bool = field(
        default=True,
        metadata=_option(
            "--no-retry-pause",
            "skip the gateway's pauses between its proxy-router attempts (chat 1 s, embeddings 1 s then 2 s); "
            "the attempts are still made and journaled",
            Switch(negates=True),
            Fixture("retry_pause", False, own_default=True),  # a test does not wait 1-3 s unless it asks to
        ),
    )
    min_session_duration: int = field(
        default=MIN_DURATION,
        metadata=_option(
            "--min-session-duration",
            "shortest duration the simulated chain accepts (default {default} s; 0 = no limit)",
            Number(NOT_NEGATIVE),
        ),
    )
    chain_latency: float = field(
        default=BID_OPEN_SECONDS,
        metadata=_option(
            "--chain-latency",
            "how long the simulated chain takes to open a bid session: parallel bidsessions of one key "
            "that arrive within it collide as on the gateway (default {default} s)",
            Number(CHAIN_LATENCY, "SECONDS"),
        ),
    )
    enforce_https: bool = field(
        default=False,
        metadata=_option(
            "--enforce-https",
            "answer plain HTTP to a non-local host with the gateway's 426, as the gateway did",
            Switch(),
        ),
    )
    max_body_size: int = field(
        default=1_048_576,
        metadata=_option(
            "--max-body-size",
            "refuse request bodies over this many bytes with 413 (default {default}, 1 MiB; 0 = no limit)",
            Number(NOT_NEGATIVE),
        ),
    )
    store: str | None = field(
        default=None,
        metadata=_option(
            "--store",
            "keep sessions in Redis (redis://HOST:PORT/N) so several workers and hosts act as one gateway",
            Text("URL"),
        ),
    )
    workers: int = field(
        default=1,
        metadata=_option(
            "--workers", "worker processes (default {default}; more than one needs --store)", Number(POSITIVE)
        ),
    )
    journal_size: int = field(
        default=1000,
        metadata=_option("--journal-size", "requests the admin journal keeps (default {default})", Number(POSITIVE)),
    )
    history_size: int = field(
        default=HISTORY_LIMIT,
        metadata=_option(
            "--history-size",
            "ended sessions the admin history keeps (default {default}; with --store, per key)",
            Number(POSITIVE),
        ),
    )
    log_level: str = field(
        default="info",
        metadata=_option(
            "--log-level",
            "{default} (the default): one line per request (method, path, status, key prefix, time); warning: none",
            Choice(LOG_LEVELS),
        ),
    )
    record: Path | None = field(
        default=None,
        metadata=_option(
            "--record",
            "record every gateway call and its answer, by key or X-Morpheus-Scenario header, to FILE "
            "(a contract for `morpheus-contract verify FILE`)",
            File(),
        ),
    )


def options() -> Iterator[tuple[Field[Any], Option]]:
    """The table: every `Config` field with its option, in the order of the help."""
    for each in fields(Config):
        yield each, each.metadata[OPTION]


@dataclass(frozen=True)
class FixtureSetting:
    """One setting of the test fixture: the marker's keyword, the `Config` field it sets, its default, its kind."""

    keyword: str
    field: str
    default: Any
    kind: Kind


def fixture_settings() -> tuple[FixtureSetting, ...]:
    """The test fixture's settings (`MockOptions`, the marker), their defaults the mock's unless the fixture has
    its own."""
    return tuple(
        FixtureSetting(
            option.fixture.name,
            each.name,
            option.fixture.default if option.fixture.own_default else each.default,
            option.kind,
        )
        for each, option in options()
        if option.fixture is not None
    )


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; every flag's default comes from its MORPHEUS_MOCK_* environment variable.

    Raises:
        ConfigError: an environment variable holds a value its option cannot take.
    """
    parser = _Parser(
        prog="morpheus-mock",
        description="A stateful mock of the Morpheus API Gateway session API (release v1.14.0).",
        epilog=f"Every option can also be set by an environment variable {ENV_PREFIX}<OPTION> "
        "(for example MORPHEUS_MOCK_PORT=9000, MORPHEUS_MOCK_KEY='sk-... sk-...', MORPHEUS_MOCK_ADMIN=1); "
        "multi-value variables take items separated by commas or spaces.",
    )
    for each, option in options():
        settings = option.kind.settings(option, each.default, environ)
        parser.add_argument(option.flag, dest=each.name, help=option.describe(each.default), **settings)
    return parser


def config_from_args(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """Flags win over environment variables, which win over defaults.

    Raises:
        ConfigError: a bad flag or environment variable (one line that says which, and what it takes).
    """
    args = vars(build_parser(environ).parse_args(list(argv)))
    return Config(**{each.name: option.kind.value(args[each.name], each.default) for each, option in options()})


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
