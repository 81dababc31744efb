"""The suite's command-line options, registered through the `pytest11` entry point `morpheus_contract`.

Options a package's conftest.py adds are unknown when pytest parses `pytest --pyargs contracts
--examples 2` from a user's folder, so the installed kit registers them here, for every pytest run.
The module stays inert for runs that do not collect the suite: it only declares options (each
defaults to None, so a bad MORPHEUS_* variable bothers only a contract run, where `settings_from`
reads it) and, for a run of the suite, turns off pytest's cache so the user's folder gets no
`.pytest_cache` (the suite keeps no Hypothesis example database either: contracts/conftest.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from contracts.settings import ENV, Settings, env_default, split_keys

SUITE = Path(__file__).resolve().parent
# What `morpheus-contract` adds after the suite's path (contracts/__main__.py): no cache, and the user's folder
# as the rootdir, so that pytest shows the tests' ids (`contracts/test_auth.py::...`) as they are.
KIT_ARGS = ("-p", "no:cacheprovider", "--rootdir=.")
DROPPED = ("-k", "--api-key", "--deselect")  # replaced by the test's own -k; keys are never printed
PACKAGE = SUITE.name


BASE_URL_PLUGIN = "base_url"  # pytest-base-url's entry point (pytest-playwright and pytest-selenium install it)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager | None = None) -> None:
    group = parser.getgroup("contracts", "Morpheus session-API contract")
    add = group.addoption
    if pluginmanager is None or not declares_base_url(pluginmanager):
        add("--base-url", help="the target; none: the in-process mock")
    add("--api-key", action="append", dest="api_keys", default=[], help="an API key of the target; twice for R7")
    add("--allow-spend", action="store_true", default=None, help="also call approve (spends tokens)")
    add("--max-sessions", metavar="N", help="cap on sessions a run opens (default 20 against a URL; 0 = none)")
    add("--rate-limit", metavar="N", help="requests per second (default 20 against a URL; 0 = none)")
    add("--session-duration", metavar="N", help="sessionDuration (seconds) of the sessions the run opens")
    add("--bid-id", action="append", dest="bid_ids", default=[], help="a bid id the run may open sessions on")
    add(
        "--skip-rule",
        action="append",
        dest="skip_rules",
        default=[],
        help="accept that a rule (R1-R8, C1-C6) is not checked",
    )
    add(
        "--allow-chat",
        action="store_true",
        default=None,
        help="also send chat completions and embeddings against a URL (C1-C6; they cost tokens)",
    )
    add(
        "--max-chats",
        metavar="N",
        help="cap on chat and embeddings requests a run sends (default 30 against a URL; 0 = none)",
    )
    add("--examples", metavar="N", help="generated examples per operation")
    add("--stateful-runs", metavar="N", help="state-machine runs per key set")
    add("--concurrency", metavar="N", help="parallel creates in the R8 contract")
    add("--summary-json", default=None, help="also write the run's summary as JSON to this file")
    add("--diff-against", default=None, help="also send a seeded request sequence to this URL and compare (or 'mock')")
    add("--diff-api-key", action="append", default=[], help="key(s) of the --diff-against target (default: the run's)")


def declares_base_url(pluginmanager: pytest.PytestPluginManager, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether pytest-base-url declares `--base-url` in this run. It does so with the same meaning and
    dest (`base_url`), and two declarations of one option stop every pytest run before it starts, so the
    suite then takes the URL from its option. It is asked before or after this plugin loads."""
    if pluginmanager.has_plugin(BASE_URL_PLUGIN):
        return True
    if pluginmanager.is_blocked(BASE_URL_PLUGIN) or environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return any(entry.name == BASE_URL_PLUGIN for entry in entry_points(group="pytest11"))


def default_of(dest: str) -> object:
    """What an option left unset (and its variable) means: the `Settings` field's default."""
    fields = {field.name: field.default for field in dataclasses.fields(Settings)}
    return fields.get(dest)


def settings_from(config: pytest.Config, rules: Sequence[str]) -> Settings:
    """The run's settings: an option given wins over its MORPHEUS_* variable, which wins over the default."""
    option = config.option
    skip_rules = tuple(rule.upper() for rule in option.skip_rules) or split_keys(env_default("skip_rules"))
    unknown = [rule for rule in skip_rules if rule not in rules]
    if unknown:
        raise pytest.UsageError(f"--skip-rule {unknown[0]}: not a session rule of the spec ({', '.join(rules)})")
    against = getattr(option, "diff_against", None)
    if against and against != "mock":
        target_url(against, "--diff-against")
    return Settings(
        base_url=target_url(option.base_url or None, "--base-url")
        or target_url(env_default("base_url"), ENV["base_url"]),
        api_keys=tuple(option.api_keys) or split_keys(env_default("api_keys")),
        allow_spend=bool(option.allow_spend) or switch("allow_spend"),
        max_sessions=number(option, "max_sessions"),
        rate_limit=number(option, "rate_limit"),
        session_duration=_whole(option, "session_duration"),
        bid_ids=tuple(option.bid_ids) or split_keys(env_default("bid_ids")),
        examples=_whole(option, "examples"),
        stateful_runs=_whole(option, "stateful_runs"),
        concurrency=_whole(option, "concurrency"),
        skip_rules=skip_rules,
        allow_chat=bool(option.allow_chat) or switch("allow_chat"),
        max_chats=number(option, "max_chats"),
    )


def _whole(option: object, dest: str) -> int:
    value = number(option, dest)
    return int(str(default_of(dest))) if value is None else int(value)


# Each numeric option: whole or not, and its least value (a rate, a cap: 0 means none).
LIMITS: dict[str, tuple[Callable[[str], float], int]] = {
    "max_sessions": (int, 0),
    "rate_limit": (float, 0),
    "session_duration": (int, 1),
    "examples": (int, 1),
    "stateful_runs": (int, 1),
    "concurrency": (int, 1),
    "max_chats": (int, 0),
}


def number(option: object, dest: str, environ: Mapping[str, str] = os.environ) -> Any:
    """The option's number (given, else its variable's, else None), checked the same way for both: a bad one
    stops the run with one line that names the flag or the variable and says what it takes."""
    given: str | None = getattr(option, dest)
    name = "--" + dest.replace("_", "-") if given is not None else ENV[dest]
    text = given if given is not None else env_default(dest, environ)
    if text is None:
        return None
    kind, least = LIMITS[dest]
    try:
        value = kind(text.strip())
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < least:
        what = "a whole number" if kind is int else "a number"
        raise pytest.UsageError(f"{name}: expected {what} of at least {least}, got {text!r}") from None
    return value


SWITCH = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def switch(dest: str, environ: Mapping[str, str] = os.environ) -> bool:
    """A MORPHEUS_* variable of an on/off option: `MORPHEUS_ALLOW_SPEND=0` is off, never on because it is set."""
    text = env_default(dest, environ)
    if text is None:
        return False
    value = SWITCH.get(text.strip().lower())
    if value is None:
        raise pytest.UsageError(f"{ENV[dest]}: expected 1/0, true/false, yes/no or on/off, got {text!r}")
    return value


def target_url(value: str | None, name: str) -> str | None:
    """A target URL as given, once it names a scheme and a host (`staging.example` alone would reach nothing)."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise pytest.UsageError(f"{name} {value!r}: not a URL: add http:// or https:// (https://staging.example)")
    return value


def as_checkout(text: str, cwd: Path | None = None) -> str:
    """`text` (a report's traceback or skip location) with the folder the kit is installed in left out of every
    path: `contracts/test_auth.py:62`, `hypothesis/core.py:120`, the same on every machine."""
    installed = SUITE.parent
    relative = os.path.relpath(installed, cwd or Path.cwd())  # pytest shows a path relative to the folder when shorter
    if relative != os.curdir:  # first: the absolute path may end the relative one (../../work/kit/)
        text = text.replace(f"{relative}{os.sep}", "")
    return text.replace(f"{installed}{os.sep}", "")


def hypothesis_home(environ: Mapping[str, str] = os.environ) -> Path:
    """Where a run keeps Hypothesis' caches: HYPOTHESIS_STORAGE_DIRECTORY when set, else the user's cache
    folder (XDG_CACHE_HOME or ~/.cache), never the folder the run starts in."""
    if environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return Path(environ["HYPOTHESIS_STORAGE_DIRECTORY"])
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "morpheus-contract" / "hypothesis"


def runs_the_suite(args: Sequence[str], pyargs: bool) -> bool:
    """Whether a pytest command line collects the suite: `--pyargs contracts[...]` or a path inside it."""
    for arg in args:
        if arg.startswith("-"):
            continue
        target = arg.split("::", 1)[0]
        if pyargs and (target == PACKAGE or target.startswith(f"{PACKAGE}.")):
            return True
        path = Path(target).resolve()
        if path == SUITE or SUITE in path.parents:
            return True
    return False


SESSION_STARTED = pytest.StashKey[bool]()  # the suite's conftest loads after this only under `--pyargs contracts`


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[SESSION_STARTED] = True


def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """A run of the suite leaves no `.pytest_cache` in the user's folder (as `-p no:cacheprovider`)."""
    if runs_the_suite(args, bool(early_config.known_args_namespace.pyargs)):
        early_config.pluginmanager.consider_pluginarg("no:cacheprovider")


def replay_command(args: Sequence[str], nodeid: str) -> str:
    """The command that re-runs one test from any folder as this run ran it: the same program and options,
    `-k` the test's name (every run is derandomized, so it replays the same cases); keys stay in
    MORPHEUS_API_KEYS or go back in by hand, as they are never printed."""
    after = 1 + len(KIT_ARGS)
    kit = args[:1] == [str(SUITE)] and tuple(args[1:after]) == KIT_ARGS
    program, rest = (["morpheus-contract"], args[after:]) if kit else (["pytest", "--pyargs", PACKAGE], args)
    kept: list[str] = []
    keys = False
    words = iter(rest)
    for word in words:
        flag = word.split("=", 1)[0]
        if flag in DROPPED:
            keys = keys or flag == "--api-key"
            if flag == word:  # its value is the next word
                next(words, None)
        elif not (word.startswith("-k") and len(word) > 2) and (kit or not _names_the_suite(word)):  # -kEXPR
            kept.append(word)
    name = nodeid.split("::")[-1].split("[", 1)[0]
    command = shlex.join([*program, *kept, "-k", name])
    return command + ("   (with your --api-key options: keys are never printed)" if keys else "")


def _names_the_suite(arg: str) -> bool:
    return arg == "--pyargs" or runs_the_suite([arg], pyargs=True)
