"""The contract document: loaded once, read-only, with its operations and session rules."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from openapi.errors import InvalidSpec, UnknownOperation

SPEC_PATH = Path(__file__).with_name("morpheus.yaml")
ADMIN_SPEC_PATH = Path(__file__).with_name("admin.yaml")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

JsonObject = Mapping[str, Any]


@dataclass(frozen=True)
class SessionRule:
    """One of the session rules R1-R8 (`x-session-rules`)."""

    id: str
    text: str


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    required: bool
    schema: JsonObject


@dataclass(frozen=True)
class Operation:
    """What the code needs of one operation; the raw node stays available as `node`."""

    operation_id: str
    method: str
    path: str
    summary: str
    security: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    request_body: JsonObject | None
    statuses: tuple[str, ...]
    session_rules: tuple[str, ...]
    node: JsonObject

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def requires_api_key(self) -> bool:
        return "APIKeyAuth" in self.security


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """A plain (JSON-serialisable) copy of a frozen node."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


class Spec:
    """A loaded OpenAPI document. Build it with `load_spec`; it never changes afterwards."""

    def __init__(self, document: JsonObject, *, name: str) -> None:
        self.name = name
        self.document: JsonObject = _freeze(thaw(document))
        self.operations = tuple(self._read_operations())
        self._by_id = {operation.operation_id: operation for operation in self.operations}
        if len(self._by_id) != len(self.operations):
            raise InvalidSpec(f"{name}: two operations share an operationId")
        self.session_rules = tuple(
            SessionRule(id=rule["id"], text=rule["text"]) for rule in self.document.get("x-session-rules", ())
        )

    def operation(self, operation_id: str) -> Operation:
        try:
            return self._by_id[operation_id]
        except KeyError:
            raise UnknownOperation(operation_id, tuple(self._by_id)) from None

    def resolve(self, node: JsonObject) -> JsonObject:
        """Follow `$ref`s (local ones only) until a node without `$ref` is reached."""
        seen: set[str] = set()
        while "$ref" in node:
            pointer = self._ref_pointer(node["$ref"])
            if pointer in seen:
                raise InvalidSpec(f"{self.name}: $ref cycle at {pointer!r}")
            seen.add(pointer)
            node = self.pointer(pointer)
        return node

    def locate(self, *tokens: str) -> str:
        """The JSON pointer reached by walking `tokens` from the root, following `$ref`s on the way.

        The last node is not dereferenced, so a schema keeps its own `$ref`.
        """
        pointer = ""
        for token in tokens:
            node = self.pointer(pointer) if pointer else self.document
            while isinstance(node, Mapping) and "$ref" in node:
                pointer = self._ref_pointer(node["$ref"])
                node = self.pointer(pointer)
            pointer = f"{pointer}/{token.replace('~', '~0').replace('/', '~1')}"
            self.pointer(pointer)
        return pointer

    def _ref_pointer(self, ref: str) -> str:
        if not ref.startswith("#/"):
            raise InvalidSpec(f"{self.name}: only local $refs are supported, got {ref!r}")
        return ref[1:]

    def pointer(self, pointer: str) -> Any:
        """The node at a JSON pointer such as `/components/schemas/SessionId`."""
        node: Any = self.document
        for token in pointer.lstrip("/").split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            try:
                node = node[token] if isinstance(node, Mapping) else node[int(token)]
            except (KeyError, IndexError, ValueError):
                raise InvalidSpec(f"{self.name}: no node at {pointer!r}") from None
        return node

    def _read_operations(self) -> Iterator[Operation]:
        default_security = self.document.get("security", ())
        for path, item in self.document.get("paths", {}).items():
            for method in HTTP_METHODS:
                if method in item:
                    yield self._read_operation(path, method, item[method], default_security)

    def _read_operation(self, path: str, method: str, node: JsonObject, default_security: Any) -> Operation:
        if "operationId" not in node:
            raise InvalidSpec(f"{self.name}: {method.upper()} {path} has no operationId")
        security = node.get("security", default_security)
        body = node.get("requestBody")
        return Operation(
            operation_id=node["operationId"],
            method=method.upper(),
            path=path,
            summary=node.get("summary", ""),
            security=tuple(name for requirement in security for name in requirement),
            parameters=tuple(self._read_parameter(parameter) for parameter in node.get("parameters", ())),
            request_body=None if body is None else self.resolve(body),
            statuses=tuple(str(status) for status in node.get("responses", {})),
            session_rules=tuple(node.get("x-session-rules", ())),
            node=node,
        )

    def _read_parameter(self, node: JsonObject) -> Parameter:
        node = self.resolve(node)
        return Parameter(
            name=node["name"],
            location=node["in"],
            required=bool(node.get("required", False)),
            schema=node.get("schema", {}),
        )


@functools.cache
def load_spec(path: Path = SPEC_PATH) -> Spec:
    """Read and parse a contract document once per process; later calls return the same object."""
    with path.open(encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3.1"):
        raise InvalidSpec(f"{path}: not an OpenAPI 3.1 document")
    return Spec(document, name=path.name)
