"""Request validation from the contract, answering every failure exactly as the gateway's FastAPI did."""

from __future__ import annotations

import email.message
import enum
import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from mockserver.web.validation_models import OperationModels

__all__ = [
    "MISSING",
    "BodyParseError",
    "RememberedValidation",
    "Validated",
    "ValidationFailure",
    "read_body",
    "validate",
]

_PARSE_ERROR = "There was an error parsing the body"
# jsonable_encoder (sqlalchemy_safe, on by default) drops dict keys with this prefix from error inputs.
_HIDDEN_KEY_PREFIX = "_sa"

_Item = dict[str, Any]
_Location = tuple[str | int, ...]


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING
"""The body of a request that sent none (an empty body)."""


@dataclass(frozen=True)
class ValidationFailure:
    """A 422: the items of FastAPI's `{"detail": [...]}`, already JSON-safe."""

    items: tuple[_Item, ...]

    def body(self) -> dict[str, Any]:
        return {"detail": [dict(item) for item in self.items]}


@dataclass(frozen=True)
class BodyParseError:
    """A 400: the body could not be read for a reason other than a JSON syntax error."""

    detail: str


@dataclass(frozen=True)
class Validated:
    """The coerced request: query values by parameter name, the body by field name (None without one)."""

    query: dict[str, Any]
    body: dict[str, Any] | None


def read_body(
    models: OperationModels, content_type: str | None, raw: bytes
) -> object | ValidationFailure | BodyParseError:
    """Phase 1, before authentication: the body value, MISSING, or why it cannot be read."""
    if models.body is None or not raw:
        return MISSING
    if not _is_json(content_type):
        return raw
    try:
        value: object = json.loads(raw)
    except json.JSONDecodeError as error:
        return ValidationFailure((_json_invalid(error),))
    except Exception:  # UnicodeDecodeError, RecursionError, too many digits: FastAPI answers 400
        return BodyParseError(_PARSE_ERROR)
    return value


def validate(models: OperationModels, query: Sequence[tuple[str, str]], body: object) -> Validated | ValidationFailure:
    """Phase 2, after authentication: query then body, every error in one list, query errors first."""
    query_values, query_errors = _validate_query(models.query, dict(query))  # a repeated name: the last wins
    body_values, body_errors = _validate_body(models, body)
    if query_errors or body_errors:
        return ValidationFailure((*query_errors, *body_errors))
    return Validated(query=query_values, body=body_values)


class RememberedValidation:
    """`validate` for one operation that remembers its verdicts on small requests seen before.

    Clients send the same few requests again and again (an SDK's create, a ping); validation is a pure
    function of the query string, the Content-Type and the body's bytes, so a request seen before gets the
    verdict it got then. Only verdicts whose values are all scalars are kept (a caller gets its own copies
    of the dicts, so nothing it does can change a kept verdict), for bodies up to `MAX_BODY` bytes, at most
    `SIZE` of them (all forgotten when full).
    """

    MAX_BODY = 512
    SIZE = 1024

    def __init__(self, models: OperationModels) -> None:
        self.models = models
        self.kept: dict[tuple[bytes, str | None, bytes], Validated | ValidationFailure] = {}

    def validate(
        self, query_string: bytes, content_type: str | None, raw_body: bytes, body: object
    ) -> Validated | ValidationFailure:
        """The verdict on a request whose body `read_body` read as `body` (from `raw_body`)."""
        key = (query_string, content_type, raw_body)
        verdict = self.kept.get(key)
        if verdict is None:
            verdict = validate(self.models, query_items(query_string), body)
            if len(raw_body) <= self.MAX_BODY and len(query_string) <= self.MAX_BODY and _scalars(verdict):
                if len(self.kept) >= self.SIZE:
                    self.kept.clear()
                self.kept[key] = verdict
        if isinstance(verdict, ValidationFailure):
            return verdict  # frozen, and its body() is built anew for every answer
        return Validated(dict(verdict.query), None if verdict.body is None else dict(verdict.body))


def _scalars(verdict: Validated | ValidationFailure) -> bool:
    if isinstance(verdict, ValidationFailure):
        return True
    values = [*verdict.query.values(), *(verdict.body or {}).values()]
    return not any(isinstance(value, dict | list | tuple | set) for value in values)


def query_items(query_string: bytes) -> list[tuple[str, str]]:
    """`request.query_params.multi_items()` without building Starlette's multidict (the same parse).

    The usual query, one `name=value` with nothing to decode, is split without `parse_qsl`.
    """
    if not query_string:
        return []
    text = query_string.decode("latin-1")
    if "&" in text or "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True)
    name, _, value = text.partition("=")
    return [(name, value)]


@functools.lru_cache(maxsize=256)  # parsing the header with email.message is slow; clients send few distinct ones
def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _json_invalid(error: json.JSONDecodeError) -> _Item:
    return {
        "type": "json_invalid",
        "loc": ["body", error.pos],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": error.msg},
    }


def _validate_query(model: type[BaseModel], values: dict[str, str]) -> tuple[dict[str, Any], list[_Item]]:
    result, errors = _run(model, values, ("query",))
    for item in errors:
        if item["type"] == "missing":
            item["input"] = None  # FastAPI checks presence itself and reports no input
    return result, errors


def _validate_body(models: OperationModels, body: object) -> tuple[dict[str, Any] | None, list[_Item]]:
    if models.body is None:
        return None, []
    if body is MISSING or body is None:
        return None, [_missing(("body",))] if models.body_required else []
    return _run(models.body, body, ("body",))


def _run(model: type[BaseModel], value: object, prefix: _Location) -> tuple[dict[str, Any], list[_Item]]:
    try:
        validated = model.model_validate(value, from_attributes=True)
    except ValidationError as error:
        return {}, [_render(detail, prefix) for detail in error.errors(include_url=False)]
    return validated.model_dump(by_alias=True), []


def _missing(loc: _Location) -> _Item:
    return {"type": "missing", "loc": list(loc), "msg": "Field required", "input": None}


def _render(detail: Mapping[str, Any], prefix: _Location) -> _Item:
    item: _Item = {"type": detail["type"], "loc": [*prefix, *detail["loc"]], "msg": detail["msg"]}
    item["input"] = _json_safe(detail["input"])
    if "ctx" in detail:
        item["ctx"] = _json_safe(detail["ctx"])
    return item


def _json_safe(value: object) -> Any:
    """What FastAPI's jsonable_encoder makes of a value found in a request.

    Two deliberate departures, where the gateway itself failed with a 500: bytes that are not UTF-8 are
    decoded with replacement characters, and NaN or an infinity (which JSON cannot carry) become text.
    """
    if isinstance(value, Mapping):
        return {
            key: _json_safe(item)
            for key, item in value.items()
            if not (isinstance(key, str) and key.startswith(_HIDDEN_KEY_PREFIX))
        }
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)  # NaN, Infinity, -Infinity
    return value
