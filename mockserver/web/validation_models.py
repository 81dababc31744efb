"""Pydantic models of each operation's query parameters and request body, built from the contract."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, create_model

from openapi import InvalidSpec, Operation, Spec, load_spec

# The Python type FastAPI declared for each canonical JSON type; lax pydantic does the coercion.
_PYTHON_TYPES: Mapping[str, type] = {"string": str, "integer": int, "boolean": bool}
_JSON = "application/json"


@dataclass(frozen=True)
class OperationModels:
    """What request validation needs of one operation."""

    query: type[BaseModel]
    body: type[BaseModel] | None
    body_required: bool


@dataclass(frozen=True)
class _FieldSource:
    """One field as the spec declares it: its wire name, its (unresolved) schema, whether required."""

    name: str
    schema: Mapping[str, Any]
    required: bool


@functools.cache
def models_for(operation_id: str) -> OperationModels:
    """The models of an operation of the contract, built on first use and reused afterwards."""
    spec = load_spec()
    return build_models(spec, spec.operation(operation_id))


def build_models(spec: Spec, operation: Operation) -> OperationModels:
    query = (
        _FieldSource(parameter.name, parameter.schema, parameter.required)
        for parameter in operation.parameters
        if parameter.location == "query"
    )
    body = operation.request_body
    return OperationModels(
        query=_model(spec, f"{operation.operation_id}_query", query),
        body=None if body is None else _body_model(spec, body),
        body_required=body is not None and bool(body.get("required", False)),
    )


def _body_model(spec: Spec, request_body: Mapping[str, Any]) -> type[BaseModel]:
    schema = spec.resolve(request_body["content"][_JSON]["schema"])
    required = set(schema.get("required", ()))
    fields = (_FieldSource(name, node, name in required) for name, node in schema.get("properties", {}).items())
    return _model(spec, schema.get("title", "Body"), fields)


def _model(spec: Spec, name: str, fields: Iterable[_FieldSource]) -> type[BaseModel]:
    # Python names are positional so that any wire name works; the wire name is the alias, which
    # pydantic reads the input by and puts in error locations.
    definitions: dict[str, Any] = {f"field_{index}": _field(spec, source) for index, source in enumerate(fields)}
    return create_model(name, **definitions)


def _field(spec: Spec, source: _FieldSource) -> tuple[type, Any]:
    resolved = spec.resolve(source.schema)
    python_type = _python_type(resolved, source.name)
    if source.required:
        return python_type, Field(alias=source.name)
    default = source.schema.get("default", resolved.get("default"))
    return python_type, Field(default=default, alias=source.name)


def _python_type(schema: Mapping[str, Any], name: str) -> type:
    canonical = str(schema.get("x-canonical-type", schema.get("type")))
    python_type = _PYTHON_TYPES.get(canonical)
    if python_type is None:
        raise InvalidSpec(f"{name}: type {canonical!r} is none of {', '.join(_PYTHON_TYPES)}")
    return python_type
