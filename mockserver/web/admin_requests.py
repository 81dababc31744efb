"""The admin API's requests validated from openapi/admin.yaml, refused in one readable line.

Each operation's query parameters and JSON body are checked against their schemas in the spec (the
gateway's side builds its pydantic models from morpheus.yaml the same way: once, at start-up). A
refusal names the field and what it accepts; a schema may say it in its own words with `x-refusal`:
a text for any error at or below it, or one text per keyword for errors of that keyword at the
schema itself. `{value}` in a text is the value refused (a `number` field's as a float).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from jsonschema import ValidationError

from openapi import Operation, Spec, Validators

_WORDS = {"integer": "a int", "string": "a str", "boolean": "true or false", "object": "an object", "array": "a list"}
_INTEGER = re.compile(r"-?\d+")


class Refused(Exception):
    """An admin request its operation's schemas refuse; the message is the problem's detail."""


@dataclass(frozen=True)
class _Parameter:
    name: str
    pointer: str  # the parameter's schema in the spec
    schema: Mapping[str, Any]  # the same, its `$ref` resolved


class AdminRequests:
    """The request checks of every admin operation, read from the spec once."""

    def __init__(self, spec: Spec, validators: Validators) -> None:
        self.spec, self.validators = spec, validators
        self._query = {op.operation_id: list(_query_parameters(spec, op)) for op in spec.operations}
        self._body = {
            op.operation_id: validators.request_schema_pointer(op.operation_id)
            for op in spec.operations
            if op.request_body is not None
        }
        self._required = {op.operation_id: bool((op.request_body or {}).get("required")) for op in spec.operations}

    def query(self, operation_id: str, given: Mapping[str, str]) -> dict[str, Any]:
        """The operation's query parameters that were sent, typed as their schemas say.

        Raises:
            Refused: a value its schema refuses.
        """
        query: dict[str, Any] = {}
        for parameter in self._query[operation_id]:
            if parameter.name in given:
                value = _typed(given[parameter.name], parameter.schema)
                self._check(parameter.pointer, value, parameter.name)
                query[parameter.name] = value
        return query

    def body(self, operation_id: str, raw: bytes) -> Any:
        """The operation's JSON body (None when it takes none, or an optional one was not sent).

        Raises:
            Refused: not JSON, or JSON its schema refuses.
        """
        pointer = self._body.get(operation_id)
        if pointer is None or (not raw and not self._required[operation_id]):
            return None
        try:
            value = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError) as error:
            raise Refused(f"the body is not JSON: {error}") from None
        self._check(pointer, value, None)
        return value

    def _check(self, pointer: str, value: Any, name: str | None) -> None:
        errors = list(self.validators.for_pointer(pointer).iter_errors(value))
        if errors:
            first = min(errors, key=lambda e: (len(e.absolute_path), e.validator in ("oneOf", "anyOf")))
            raise Refused(self._refusal(pointer, first, name))

    def _refusal(self, pointer: str, error: ValidationError, name: str | None) -> str:
        """The schemas' own words for `error` (the nearest `x-refusal`), else the field and what it accepts."""
        chain = list(self._chain(pointer, error.absolute_path, name))
        own_name, own = chain[-1]
        keyword = str(error.validator)
        declared = own.get("x-refusal")
        if isinstance(declared, Mapping):
            declared = declared.get(keyword)
        for _, schema in reversed(chain[:-1]):
            if declared is not None:
                break
            declared = schema.get("x-refusal") if isinstance(schema.get("x-refusal"), str) else None
        if declared is not None:
            instance: Any = error.instance
            value = float(instance) if own.get("type") == "number" else instance
            return str(declared).replace("{value}", str(value))
        return self._generic(keyword, error, own_name, own)

    def _generic(self, keyword: str, error: ValidationError, name: str | None, schema: Mapping[str, Any]) -> str:
        properties, instance = schema.get("properties", {}), cast(Any, error.instance)
        if keyword == "additionalProperties":
            unknown = sorted(set(instance) - set(properties))
            return f"unknown fields: {', '.join(unknown)}; allowed: {', '.join(sorted(properties))}"
        if keyword == "required":
            missing = next(field for field in cast(list[str], error.validator_value) if field not in instance)
            return f"'{missing}' must be {_words(self.spec.resolve(properties.get(missing, {})))}"
        if name is None:
            return "the body must be a JSON object"
        return f"'{name}' must be {_words(schema)}"

    def _chain(self, pointer: str, path: Any, name: str | None) -> Iterator[tuple[str | None, Mapping[str, Any]]]:
        """Each schema from the checked value's root down to the refused part, with the field's name."""
        schema: Mapping[str, Any] = self.spec.resolve(self.spec.pointer(pointer))
        yield name, schema
        for token in path:
            if isinstance(token, int):
                schema = self.spec.resolve(schema.get("items", {}))
            else:
                name, schema = token, self.spec.resolve(schema.get("properties", {}).get(token, {}))
            yield name, schema


def _words(schema: Mapping[str, Any]) -> str:
    """What a schema accepts, in the refusal's words."""
    if "enum" in schema:
        return "one of " + ", ".join(str(value) for value in schema["enum"])
    if schema.get("type") == "number":
        return f"a number >= {schema.get('minimum', schema.get('exclusiveMinimum', 0)):g}"
    return _WORDS.get(str(schema.get("type")), "valid")


def _typed(raw: str, schema: Mapping[str, Any]) -> Any:
    """A query string as an integer schema reads it (left a string when it is no integer: the schema refuses it)."""
    return int(raw) if schema.get("type") == "integer" and _INTEGER.fullmatch(raw) else raw


def _query_parameters(spec: Spec, operation: Operation) -> list[_Parameter]:
    """The operation's own query parameters (the path's `prefix` is Starlette's to match), with their schemas."""
    tokens = ("paths", operation.path, operation.method.lower(), "parameters")
    pointers = [spec.locate(*tokens, str(index), "schema") for index in range(len(operation.parameters))]
    return [
        _Parameter(parameter.name, pointer, spec.resolve(parameter.schema))
        for parameter, pointer in zip(operation.parameters, pointers, strict=True)
        if parameter.location == "query"
    ]
