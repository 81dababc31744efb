"""jsonschema validators for the document's schemas, and readable body errors.

The whole document is one `referencing` resource, so every `#/components/...` reference inside a
schema resolves against it. A validator is built on first use and cached by the JSON pointer of
its schema; the pointer of a response or request body is found once per
(operationId, status, media type).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from openapi.document import JsonObject, Operation, Spec, thaw
from openapi.errors import UndocumentedResponse

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
_MAX_MESSAGE_PART = 120


@dataclass(frozen=True)
class BodyError:
    """One way a body breaks its schema: where (a JSON path) and which keyword (the rule)."""

    path: str
    keyword: str
    message: str
    schema_path: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.keyword} at {self.schema_path}]"


@dataclass(frozen=True)
class StreamSchema:
    """A server-sent event stream's contract: the pointer of its frames' JSON schema, and its end marker's data."""

    frame_pointer: str
    done: str


def json_path(parts: Iterable[str | int]) -> str:
    """`$.data[0].id` style path of an instance location."""
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)


def media_type_key(media_type: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return media_type.split(";", 1)[0].strip().lower()


class Validators:
    """Cached validators over one Spec; safe to share between threads."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.uri = f"urn:contract:{spec.name}"
        resource = DRAFT202012.create_resource(thaw(spec.document))
        self._registry: Registry[Any] = Registry().with_resource(self.uri, resource)
        self._validators: dict[str, Draft202012Validator] = {}
        self._pointers: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()

    def for_pointer(self, pointer: str) -> Draft202012Validator:
        """The validator of the schema at a JSON pointer, such as `/components/schemas/SessionId`."""
        validator = self._validators.get(pointer)
        if validator is None:
            self.spec.pointer(pointer)  # fails early, with the pointer named, if there is no such node
            validator = Draft202012Validator(
                {"$ref": f"{self.uri}#{pointer}"}, registry=self._registry, format_checker=FormatChecker()
            )
            with self._lock:
                validator = self._validators.setdefault(pointer, validator)
        return validator

    def for_component(self, name: str) -> Draft202012Validator:
        return self.for_pointer(f"/components/schemas/{name}")

    def for_response(self, operation_id: str, status: int | str, media_type: str = JSON) -> Draft202012Validator:
        """The validator of a documented response body (raises UndocumentedResponse)."""
        return self.for_pointer(self.response_schema_pointer(operation_id, status, media_type))

    def for_request_body(self, operation_id: str, media_type: str = JSON) -> Draft202012Validator:
        return self.for_pointer(self.request_schema_pointer(operation_id, media_type))

    def response_key(self, operation_id: str, status: int | str) -> str:
        """The documented response that answers `status`: exact, then `4XX`-style, then `default`."""
        responses = self.spec.operation(operation_id).node.get("responses", {})
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in responses:
                return key
        raise UndocumentedResponse(operation_id, status, "-", "status not documented")

    def response_schema_pointer(self, operation_id: str, status: int | str, media_type: str = JSON) -> str:
        key = (operation_id, str(status), media_type_key(media_type))
        pointer = self._pointers.get(key)
        if pointer is None:
            pointer = self._pointers.setdefault(key, self._find_response_schema(*key))
        return pointer

    def request_schema_pointer(self, operation_id: str, media_type: str = JSON) -> str:
        key = (operation_id, "request", media_type_key(media_type))
        pointer = self._pointers.get(key)
        if pointer is None:
            pointer = self._pointers.setdefault(key, self._find_request_schema(operation_id, key[2]))
        return pointer

    def stream_schema(self, operation_id: str, status: int | str) -> StreamSchema:
        """What each event of a documented `text/event-stream` answer carries (raises UndocumentedResponse).

        The event's schema names the stream's end marker (`x-sse-done`), and its `data`'s `contentSchema`
        the schema every other event's JSON must match.
        """
        event = self.spec.pointer(self.response_schema_pointer(operation_id, status, EVENT_STREAM))
        frame = next(
            branch["contentSchema"] for branch in event["properties"]["data"]["anyOf"] if "contentSchema" in branch
        )
        return StreamSchema(str(frame["$ref"]).removeprefix("#"), str(event["x-sse-done"]))

    def body_errors(self, operation_id: str, status: int | str, body: Any, media_type: str = JSON) -> list[BodyError]:
        """Every way `body` breaks the documented response schema, as readable messages (empty when valid)."""
        return self.errors(self.response_schema_pointer(operation_id, status, media_type), body)

    def errors(self, pointer: str, instance: Any) -> list[BodyError]:
        """Every way `instance` breaks the schema at `pointer`, sorted by JSON path."""
        found = {
            item for error in self.for_pointer(pointer).iter_errors(instance) for item in self._explain(pointer, error)
        }
        return sorted(found, key=lambda item: (item.path, item.keyword, item.message))

    def _explain(self, pointer: str, error: ValidationError, prefix: tuple[str | int, ...] = ()) -> Iterator[BodyError]:
        """Turn an error into messages; oneOf/anyOf are narrowed to the branch that was meant."""
        if error.validator in ("oneOf", "anyOf") and error.context:
            routed = self._discriminated(pointer, error, prefix)
            if routed is not None:
                yield from routed
                return
            for branch_error in _closest_branch(error.context):
                yield from self._explain(pointer, branch_error, prefix)
            return
        yield _body_error(pointer, error, prefix)

    def _discriminated(
        self, pointer: str, error: ValidationError, prefix: tuple[str | int, ...]
    ) -> list[BodyError] | None:
        """Errors against the branch an OpenAPI `discriminator` names, or None without one."""
        discriminator = error.schema.get("discriminator") if isinstance(error.schema, Mapping) else None
        if not discriminator or not isinstance(error.instance, Mapping):
            return None
        name = discriminator["propertyName"]
        mapping = discriminator.get("mapping", {})
        value = error.instance.get(name)
        target = mapping.get(value) if isinstance(value, str) else None
        where = (*prefix, *error.absolute_path)
        if target is None:
            message = f"{value!r} is not one of {', '.join(mapping)}"
            return [BodyError(json_path((*where, name)), "discriminator", message, _schema_path(pointer, error))]
        branch = target.removeprefix("#")
        return [
            item
            for branch_error in self.for_pointer(branch).iter_errors(error.instance)
            for item in self._explain(branch, branch_error, where)
        ]

    def _find_response_schema(self, operation_id: str, status: str, media_type: str) -> str:
        operation = self.spec.operation(operation_id)
        key = self.response_key(operation_id, status)
        response = self.spec.resolve(operation.node["responses"][key])
        media = _match_media_type(response.get("content", {}), media_type)
        if media is None or "schema" not in response["content"][media]:
            raise UndocumentedResponse(operation_id, status, media_type, "no schema for this media type")
        return self._named(self.spec.locate(*_tokens(operation), "responses", key, "content", media, "schema"))

    def _find_request_schema(self, operation_id: str, media_type: str) -> str:
        operation = self.spec.operation(operation_id)
        content = {} if operation.request_body is None else operation.request_body.get("content", {})
        media = _match_media_type(content, media_type)
        if media is None or "schema" not in content[media]:
            raise UndocumentedResponse(operation_id, "request", media_type, "no request body schema")
        return self._named(self.spec.locate(*_tokens(operation), "requestBody", "content", media, "schema"))

    def _named(self, pointer: str) -> str:
        """A schema that is only a `$ref` is reported under the name it refers to."""
        node = self.spec.pointer(pointer)
        ref = node.get("$ref") if isinstance(node, Mapping) and len(node) == 1 else None
        return ref.removeprefix("#") if isinstance(ref, str) and ref.startswith("#/") else pointer


def _closest_branch(context: list[ValidationError]) -> list[ValidationError]:
    """The errors of the oneOf/anyOf branch the instance came closest to: fewest errors, then deepest."""
    branches: dict[int, list[ValidationError]] = {}
    for error in context:
        branches.setdefault(int(error.relative_schema_path[0]), []).append(error)
    return min(branches.values(), key=lambda errors: (len(errors), -max(len(e.absolute_path) for e in errors)))


def _body_error(pointer: str, error: ValidationError, prefix: tuple[str | int, ...]) -> BodyError:
    message = error.message
    if len(message) > 2 * _MAX_MESSAGE_PART:
        message = f"{message[:_MAX_MESSAGE_PART]} ... {message[-_MAX_MESSAGE_PART:]}"
    path = json_path((*prefix, *error.absolute_path))
    return BodyError(path, str(error.validator), message, _schema_path(pointer, error))


def _schema_path(pointer: str, error: ValidationError) -> str:
    """Where the broken keyword sits: the validator's pointer plus the path jsonschema walked."""
    return pointer + "".join(f"/{part}" for part in error.absolute_schema_path)


def _match_media_type(content: JsonObject, media_type: str) -> str | None:
    for candidate in (media_type, media_type.split("/", 1)[0] + "/*", "*/*"):
        if candidate in content:
            return candidate
    return None


def _tokens(operation: Operation) -> tuple[str, str, str]:
    return ("paths", operation.path, operation.method.lower())
