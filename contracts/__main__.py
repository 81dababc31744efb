"""`python -m contracts` / `morpheus-contract`: run the contract suite (pytest) against a target.

    python -m contracts                                   # against the in-process mock
    python -m contracts --base-url https://staging.example --api-key sk-... --api-key sk-...
    python -m contracts --base-url ... --api-key ... --junitxml reports/contract.xml

Every option of `pytest contracts` is accepted, and so are pytest's own (`--help-pytest` lists them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from _pytest.config.argparsing import Parser

from contracts.options import KIT_ARGS, SUITE, default_of, pytest_addoption
from contracts.settings import ENV

PROG = "morpheus-contract"
HELP = ("-h", "--help")
PYTEST_HELP = "--help-pytest"
VERIFY = "verify"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [VERIFY]:  # `morpheus-contract verify FILE`: replay an application's recorded contract
        from contracts.verify import main as verify

        return verify(args[1:])
    if PYTEST_HELP in args:
        return int(pytest.main([str(SUITE), *KIT_ARGS, "--help"]))
    if any(arg in HELP for arg in args):
        print(usage())
        return 0
    return int(pytest.main([str(SUITE), *KIT_ARGS, *args], plugins=[OneLineErrors()]))


class OneLineErrors:
    """A flag pytest cannot parse (`--bogus`, `--junitxml` with no file) is one line that says what to do,
    not argparse's usage text, `pytest.main(): error: ...` and pytest's inifile and rootdir lines."""

    @pytest.hookimpl(wrapper=True)
    def pytest_cmdline_parse(self) -> Iterator[None]:
        try:
            return (yield)
        except pytest.UsageError as error:
            raise pytest.UsageError(one_line(str(error))) from None


def one_line(message: str) -> str:
    """argparse's error, said by this program, with where to find the options."""
    lines = message.splitlines()
    said = next((line.split(": error: ", 1)[1] for line in lines if ": error: " in line), lines[0] if lines else "")
    return f"{PROG}: {said} ({PROG} --help lists the options)"


def usage() -> str:
    """The kit's own options first, each with its environment variable and its default; then where pytest's are."""
    lines = [
        f"usage: {PROG} [options] [pytest options]",
        "",
        "Run the Morpheus session-API contract suite against a gateway (default: the mock, in this process).",
        "",
        "options (an option given wins over its environment variable):",
    ]
    for names, attrs in kit_options():
        lines.append(f"  {', '.join(names)}{_metavar(names, attrs)}")
        lines.append(f"      {attrs.get('help', '')}")
        lines.append(f"      {_source(attrs)}")
    lines += [
        "",
        f"pytest's own options work too (-k, -x, -n 2, --junitxml FILE, ...): {PROG} {PYTEST_HELP} lists them.",
        f"example: {PROG} --base-url https://staging.example --api-key sk-1 --api-key sk-2 --junitxml report.xml",
        f"{PROG} {VERIFY} FILE [options]: replay your application's recorded calls ({PROG} {VERIFY} --help).",
    ]
    return "\n".join(lines)


def kit_options() -> Iterator[tuple[Sequence[str], dict[str, Any]]]:
    """(names, attributes) of every option the suite's plugin adds, in its order."""
    parser = Parser(_ispytest=True)
    pytest_addoption(parser)
    for group in parser._groups:
        for option in group.options:
            yield option.names(), option.attrs()


METAVARS = {"url": "URL", "key": "KEY", "id": "ID", "rule": "RULE", "json": "FILE", "against": "URL"}


def _metavar(names: Sequence[str], attrs: dict[str, Any]) -> str:
    if attrs.get("nargs") == 0:  # a flag
        return ""
    if attrs.get("metavar"):
        return f" {attrs['metavar']}"
    return " " + METAVARS.get(names[-1].rsplit("-", 1)[-1], "VALUE")


def _source(attrs: dict[str, Any]) -> str:
    """Its environment variable and its default (the help text states a default that depends on the target)."""
    dest = str(attrs.get("dest", ""))
    env, repeatable = ENV.get(dest), isinstance(attrs.get("default"), list)  # append keeps a list
    default = default_of(dest) if attrs.get("default") is None else attrs.get("default")
    shown = "none" if default in (None, []) else str(default).lower() if isinstance(default, bool) else str(default)
    parts = [f"env {env}" if env else "no environment variable"]
    if repeatable:
        parts.append("repeatable")
    if not (default is None and "default" in str(attrs.get("help", ""))):
        parts.append(f"default: {shown}")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
