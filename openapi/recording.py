"""The contract recording's file format: what the mock records of an application's tests and
`morpheus-contract verify` replays. Described by `recording.schema.json` (JSON Schema 2020-12) beside
the spec; this module is the one place that reads, checks and writes it."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from openapi.errors import SpecError
from openapi.validation import json_path

RECORDING_SCHEMA_PATH = Path(__file__).with_name("recording.schema.json")
RECORDING_FORMAT = "morpheus-contract-recording"
RECORDING_VERSION = 1  # the version this kit writes and reads


class RecordingError(SpecError):
    """A contract recording that cannot be read; its text is one line that says what to do."""


@functools.cache
def _validator() -> Draft202012Validator:
    schema = json.loads(RECORDING_SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def recording_errors(document: Any) -> list[str]:
    """What is wrong with a recording document against the schema (`$.path: message`), first error first."""
    errors = sorted(_validator().iter_errors(document), key=lambda error: list(error.absolute_path))
    return [f"{json_path(error.absolute_path)}: {error.message[:200]}" for error in errors]


def new_recording(recorded_by: str, sequences: list[dict[str, Any]]) -> dict[str, Any]:
    """A recording document of this version."""
    return {
        "format": RECORDING_FORMAT,
        "version": RECORDING_VERSION,
        "recorded_by": recorded_by,
        "sequences": sequences,
    }


def write_recording(path: Path, document: dict[str, Any]) -> None:
    """Write `document` (checked against the schema first) to `path`, replacing it whole."""
    errors = recording_errors(document)
    if errors:
        raise RecordingError(f"{path}: the recording breaks its own schema: {errors[0]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    partial.replace(path)


def read_recording(path: Path) -> dict[str, Any]:
    """The recording at `path`, checked: its format, its version (another one is refused with what to do),
    then the schema. Raises RecordingError (one line)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RecordingError(f"{path}: cannot read the recording: {error.strerror or error}") from None
    except ValueError as error:
        raise RecordingError(f"{path}: not a contract recording (not JSON: {error})") from None
    if not isinstance(document, dict) or document.get("format") != RECORDING_FORMAT:
        raise RecordingError(f'{path}: not a contract recording (no "format": "{RECORDING_FORMAT}")')
    version = document.get("version")
    if version != RECORDING_VERSION:
        raise RecordingError(f"{path}: {_version_problem(version)}")
    errors = recording_errors(document)
    if errors:
        raise RecordingError(f"{path}: not a valid contract recording: {errors[0]}")
    return document


def _version_problem(version: Any) -> str:
    if isinstance(version, int) and not isinstance(version, bool) and version < RECORDING_VERSION:
        return (
            f"recorded with format version {version}, which this kit no longer reads (it reads version "
            f"{RECORDING_VERSION}): record it again with your tests (pytest --morpheus-record FILE)"
        )
    if isinstance(version, int) and not isinstance(version, bool):
        return (
            f"recorded with format version {version}, newer than this kit reads ({RECORDING_VERSION}): "
            "upgrade the kit (pip install -U morpheus-contract-kit)"
        )
    return f"the format version must be a whole number, got {version!r}"


_FULL_KEY = re.compile(r"(sk-[A-Za-z0-9]{6})[.][0-9A-Za-z]+")
_ALIAS = re.compile(r"key([1-9][0-9]*)")
UNKNOWN_SECRET = "0" * 64  # what stands for the secret of a key the recording does not know


def alias(number: int) -> str:
    """The name of a sequence's `number`-th key (from 1) in a recording."""
    return f"key{number}"


def _prefix(key: str) -> str:
    return key.split(".", 1)[0]


def hide_keys(text: str, keys: Sequence[str]) -> str:
    """`text` with each of `keys` (full keys, or prefixes of keys known only so), and each one's prefix,
    replaced by its alias; any other full key keeps only its prefix, with a secret of zeros."""
    aliases = {key: alias(number) for number, key in enumerate(keys, start=1)}
    by_prefix = {_prefix(key): name for key, name in aliases.items()}

    def hidden(match: re.Match[str]) -> str:
        return aliases.get(match[0]) or aliases.get(match[1]) or f"{match[1]}.{UNKNOWN_SECRET}"

    text = _FULL_KEY.sub(hidden, text)
    for prefix, name in by_prefix.items():
        text = re.sub(re.escape(prefix) + r"(?![.\w])", name, text)
    return text


def aliased_key(value: str, keys: Sequence[str]) -> str | None:
    """The key an alias (`key2`) stands for among `keys`; None when `value` is not an alias of one."""
    match = _ALIAS.fullmatch(value)
    if match is None or int(match[1]) > len(keys):
        return None
    return keys[int(match[1]) - 1]
