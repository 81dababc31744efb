"""Reading JSON table files with precise, located error messages."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TypeVar

from mockserver.domain.errors import InvalidTable

T = TypeVar("T")

_TYPE_NAMES: dict[type, str] = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}


def read_json(path: str | os.PathLike[str]) -> dict[str, object]:
    """The JSON object in the file at `path`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidTable(f"cannot read {os.fspath(path)}: {exc}") from exc
    return as_object(data, "$")


def as_object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise InvalidTable(f"{where} must be a JSON object, got {value!r}")
    return value


def get(obj: dict[str, object], name: str, kind: type[T], where: str, default: object = None) -> T:
    """`obj[name]` checked to be of `kind` (a bool is not an integer here); `where` locates `obj`."""
    if name not in obj and default is None:
        raise InvalidTable(f"{where}.{name} is missing")
    value = obj.get(name, default)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidTable(f"{where}.{name} must be {_TYPE_NAMES[kind]}, got {value!r}")
    return value


def strings(obj: dict[str, object], name: str, where: str) -> tuple[str, ...]:
    """`obj[name]` checked to be a list of strings (missing: empty)."""
    items: list[object] = get(obj, name, list, where, default=[])
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidTable(f"{where}.{name}[{index}] must be a string, got {item!r}")
    return tuple(str(item) for item in items)
