"""Pydantic models of each operation's query parameters and request body, built from the contract.

The models are built once, at start-up, from the spec the app was given (`request_models`): nested
objects become nested models (named by their schema's `title`, as the gateway's classes were), arrays
lists, `anyOf` unions in the schema's order (a `null` branch makes the field optional), and a schema
with `x-canonical-type` the lax scalar pydantic coerces to. FastAPI's 422 items come out of pydantic's
errors unchanged, union branch names included (`["body", "input", "list[str]", 0]`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, Field, create_model

from openapi import InvalidSpec, Operation, Spec, thaw

# The Python type FastAPI declared for each canonical JSON type; lax pydantic does the coercion.
_PYTHON_TYPES: Mapping[str, type] = {"string": str, "integer": int, "boolean": bool, "number": float}
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


def request_models(spec: Spec) -> dict[str, OperationModels]:
    """Every operation's models, by operationId (the app builds them once, from its own spec)."""
    builder = _Builder(spec)
    return {operation.operation_id: builder.operation(operation) for operation in spec.operations}


def build_models(spec: Spec, operation: Operation) -> OperationModels:
    """One operation's models."""
    return _Builder(spec).operation(operation)


class _Builder:
    """Builds models from one spec; a named object schema becomes one model, shared by every use."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.named: dict[str, type[BaseModel]] = {}

    def operation(self, operation: Operation) -> OperationModels:
        query = (
            _FieldSource(parameter.name, parameter.schema, parameter.required)
            for parameter in operation.parameters
            if parameter.location == "query"
        )
        body = operation.request_body
        return OperationModels(
            query=self.model(f"{operation.operation_id}_query", query),
            body=None if body is None else self.object(self.spec.resolve(body["content"][_JSON]["schema"]), "Body"),
            body_required=body is not None and bool(body.get("required", False)),
        )

    def object(self, schema: Mapping[str, Any], fallback: str) -> type[BaseModel]:
        name = str(schema.get("title", fallback))
        if name not in self.named:
            required = set(schema.get("required", ()))
            fields = (_FieldSource(n, node, n in required) for n, node in schema.get("properties", {}).items())
            self.named[name] = self.model(name, fields)
        return self.named[name]

    def model(self, name: str, fields: Iterable[_FieldSource]) -> type[BaseModel]:
        # Python names are positional so that any wire name works; the wire name is the alias, which
        # pydantic reads the input by and puts in error locations.
        definitions: dict[str, Any] = {f"field_{index}": self.field(source) for index, source in enumerate(fields)}
        return create_model(name, **definitions)

    def field(self, source: _FieldSource) -> tuple[Any, Any]:
        resolved = self.spec.resolve(source.schema)
        python_type = self.python_type(source.schema, source.name)
        if source.required:
            return python_type, Field(alias=source.name)
        default = thaw(source.schema.get("default", resolved.get("default")))
        return python_type, Field(default=default, alias=source.name)

    def python_type(self, schema: Mapping[str, Any], name: str) -> Any:
        resolved = self.spec.resolve(schema)
        canonical = resolved.get("x-canonical-type")
        if canonical is not None:
            return self.scalar(str(canonical), name)
        if "anyOf" in resolved:
            return Union[tuple(self.python_type(branch, name) for branch in resolved["anyOf"])]  # noqa: UP007
        kind = resolved.get("type")
        if kind == "null":
            return type(None)
        if kind == "array":
            return list[self.python_type(resolved.get("items", {}), name)]  # type: ignore[misc]
        if kind == "object":
            return self.object(resolved, name) if "properties" in resolved else dict[str, Any]
        return self.scalar(str(kind), name)

    @staticmethod
    def scalar(canonical: str, name: str) -> type:
        python_type = _PYTHON_TYPES.get(canonical)
        if python_type is None:
            raise InvalidSpec(f"{name}: type {canonical!r} is none of {', '.join(_PYTHON_TYPES)}, array, object")
        return python_type
