"""The self-check of every response, with response schemas compiled once into plain predicates.

jsonschema walks a schema, resolving its `$ref`s, on every call: that was 40% of the mock's time
under load (bench/results.md). Here each documented response schema is compiled once into nested
Python closures that answer only "valid or not", with jsonschema's Draft 2020-12 semantics for the
keywords the contract uses (a bool is no integer, 1.0 is; const and enum compare as jsonschema's
`equal`; a pattern is `re.search`). A schema with any other keyword is not compiled and jsonschema
decides alone. A body the predicate refuses is validated again by jsonschema, whose errors are
what gets reported, so a report reads exactly as before.

A `text/event-stream` answer is checked frame by frame as it is sent (`StreamCheck`): each frame one
SSE event of `data:` lines, its data the spec's end marker (`x-sse-done`) or JSON of the frame schema
(the `contentSchema` of the event's `data`), the end marker or an error frame last and nothing after.
"""

from __future__ import annotations

import json
import numbers
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from openapi import EVENT_STREAM, Spec, StreamSchema, UndocumentedResponse, Validators

Predicate = Callable[[Any], bool]

# Keywords jsonschema ignores when validating (annotations), besides every `x-` extension.
ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "example",
        "examples",
        "discriminator",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
        "externalDocs",
        "xml",
        "then",  # read by `if` only
        "else",
    }
)


class Unsupported(Exception):
    """The schema uses something the compiler does not reproduce; jsonschema keeps it."""


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Number)


TYPES: Mapping[str, Predicate] = {
    "string": lambda value: isinstance(value, str),
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "null": lambda value: value is None,
    "boolean": lambda value: isinstance(value, bool),
    "integer": _is_integer,
    "number": _is_number,
}

_TRUE, _FALSE = object(), object()


def _unbool(value: Any) -> Any:
    return _TRUE if value is True else _FALSE if value is False else value


def json_equal(one: Any, two: Any) -> bool:
    """jsonschema's `equal`: Python equality, except that True/False are not 1/0, in lists and objects too."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(json_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(key in two and json_equal(value, two[key]) for key, value in one.items())
    return bool(_unbool(one) == _unbool(two))


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


def _all(checks: list[Predicate]) -> Predicate:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)

    def every(value: Any) -> bool:
        for check in checks:  # noqa: SIM110 - a loop, not all(<generator>): this runs on every response
            if not check(value):
                return False
        return True

    return every


class Compiler:
    """Compiles the schemas of one document; a `$ref` target is compiled once and shared."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._by_pointer: dict[str, Predicate] = {}

    def compile(self, pointer: str) -> Predicate:
        """The predicate of the schema at a JSON pointer of the document.

        Raises:
            Unsupported: the schema, or one it refers to, uses a keyword the compiler lacks.
        """
        before = dict(self._by_pointer)
        try:
            return self.pointer(pointer)
        except Unsupported:
            self._by_pointer = before  # nothing half-built stays behind
            raise

    def pointer(self, pointer: str) -> Predicate:
        done = self._by_pointer.get(pointer)
        if done is not None:
            return done
        cell: list[Predicate] = []
        self._by_pointer[pointer] = lambda value: cell[0](value)  # a $ref cycle reaches itself through this
        compiled = self.schema(self.spec.pointer(pointer))
        cell.append(compiled)
        self._by_pointer[pointer] = compiled
        return compiled

    def schema(self, schema: Any) -> Predicate:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, Mapping):
            raise Unsupported(f"schema {schema!r}")
        unknown = [key for key in schema if key not in _KNOWN and not key.startswith("x-")]
        if unknown:
            raise Unsupported(f"keywords {sorted(unknown)}")
        objects_only = schema.get("type") == "object"
        checks = []
        if objects_only or any(keyword in schema for keyword in _OBJECT_KEYWORDS):
            checks.append(self._object(schema, objects_only))
        for keyword in _ORDER:
            if keyword in schema and not (keyword == "type" and objects_only):
                checks.append(_KEYWORDS[keyword](self, schema[keyword], schema))
        return _all(checks)

    def _ref(self, ref: Any, schema: Mapping[str, Any]) -> Predicate:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise Unsupported(f"$ref {ref!r}")
        return self.pointer(ref[1:])

    def _type(self, types: Any, schema: Mapping[str, Any]) -> Predicate:
        names = [types] if isinstance(types, str) else list(types)
        if any(name not in TYPES for name in names):
            raise Unsupported(f"type {types!r}")
        checks = [TYPES[name] for name in names]
        if len(checks) == 1:
            return checks[0]
        return lambda value: any(check(value) for check in checks)

    def _const(self, const: Any, schema: Mapping[str, Any]) -> Predicate:
        if const is True or const is False or const is None:
            return lambda value: value is const
        if isinstance(const, str):
            return lambda value: bool(value == const)
        return lambda value: json_equal(value, const)

    def _enum(self, values: Any, schema: Mapping[str, Any]) -> Predicate:
        options = list(values)
        if all(isinstance(option, str) for option in options):
            strings = frozenset(options)
            # A str (or str subclass) equal to one of them; anything else compares unequal to every str.
            return lambda value: isinstance(value, str) and value in strings
        return lambda value: any(json_equal(value, option) for option in options)

    def _pattern(self, pattern: Any, schema: Mapping[str, Any]) -> Predicate:
        search = re.compile(pattern).search
        return lambda value: not isinstance(value, str) or search(value) is not None

    def _object(self, schema: Mapping[str, Any], objects_only: bool) -> Predicate:
        """`required`, `properties` and `additionalProperties` as one check (and `type: object` when `objects_only`).

        Without `type: object` they constrain objects only and let anything else pass, as in jsonschema.
        patternProperties is not compiled (an unknown keyword), so `properties` alone names the known keys.
        """
        required = tuple(schema.get("required", ()))
        declared = schema.get("properties", {})
        properties = tuple((name, self.schema(subschema)) for name, subschema in declared.items())
        additional = schema.get("additionalProperties", True)
        closed = additional is False
        known = frozenset(declared)
        extra = None if additional is True or closed else self.schema(additional)

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return not objects_only
            for name in required:
                if name not in value:
                    return False
            if closed and not value.keys() <= known:
                return False
            for name, valid in properties:
                if name in value and not valid(value[name]):
                    return False
            if extra is not None:
                for name, item in value.items():
                    if name not in known and not extra(item):
                        return False
            return True

        return check

    def _items(self, items: Any, schema: Mapping[str, Any]) -> Predicate:
        # prefixItems is not compiled (an unknown keyword), so `items` applies to every item.
        valid = self.schema(items)

        def check(value: Any) -> bool:
            if not isinstance(value, list):
                return True
            for item in value:  # noqa: SIM110 - as in _all
                if not valid(item):
                    return False
            return True

        return check

    def _min_items(self, count: Any, schema: Mapping[str, Any]) -> Predicate:
        return lambda value: not isinstance(value, list) or len(value) >= count

    def _minimum(self, bound: Any, schema: Mapping[str, Any]) -> Predicate:
        def check(value: Any) -> bool:
            return not isinstance(value, int | float) or isinstance(value, bool) or value >= bound

        return check

    def _one_of(self, branches: Any, schema: Mapping[str, Any]) -> Predicate:
        checks = tuple(self.schema(branch) for branch in branches)

        def check(value: Any) -> bool:
            matched = False
            for valid in checks:
                if valid(value):
                    if matched:
                        return False
                    matched = True
            return matched

        return check

    def _any_of(self, branches: Any, schema: Mapping[str, Any]) -> Predicate:
        checks = tuple(self.schema(branch) for branch in branches)
        return lambda value: any(valid(value) for valid in checks)

    def _if(self, condition: Any, schema: Mapping[str, Any]) -> Predicate:
        test = self.schema(condition)
        then = self.schema(schema["then"]) if "then" in schema else _always
        otherwise = self.schema(schema["else"]) if "else" in schema else _always
        return lambda value: then(value) if test(value) else otherwise(value)


_KEYWORDS: dict[str, Callable[[Compiler, Any, Mapping[str, Any]], Predicate]] = {
    "type": Compiler._type,
    "const": Compiler._const,
    "enum": Compiler._enum,
    "items": Compiler._items,
    "minItems": Compiler._min_items,
    "minimum": Compiler._minimum,
    "pattern": Compiler._pattern,
    "$ref": Compiler._ref,
    "if": Compiler._if,
    "anyOf": Compiler._any_of,
    "oneOf": Compiler._one_of,
}
_ORDER = tuple(_KEYWORDS)  # cheap checks first
_OBJECT_KEYWORDS = ("required", "properties", "additionalProperties")  # compiled together by Compiler._object
_KNOWN = frozenset(_KEYWORDS) | frozenset(_OBJECT_KEYWORDS) | ANNOTATIONS


class ResponseChecks:
    """The self-check of every operation's responses; each documented response schema is compiled at start."""

    REMEMBERED = 256

    def __init__(self, spec: Spec, validators: Validators) -> None:
        self.validators = validators
        compiler = Compiler(spec)
        self._by_pointer: dict[str, Predicate] = {}
        for operation in spec.operations:
            for status in operation.statuses:
                try:
                    pointer = validators.response_schema_pointer(operation.operation_id, status)
                except UndocumentedResponse:
                    continue  # no JSON schema documented: problems() raises UndocumentedResponse for it, as before
                self._by_pointer[pointer] = _compiled(compiler, pointer)
        self._streams = dict(_streams(spec, validators, compiler))
        self._by_response: dict[tuple[str, int], Predicate] = {}
        self._conforming: dict[tuple[str, int], set[bytes]] = {}

    def problems(self, operation_id: str, status: int, body: Any, sent: bytes | None = None) -> list[str]:
        """Every way `body` breaks the documented response, as readable messages (empty when it conforms).

        `sent`: the body's JSON as it goes on the wire. The same bytes are the same JSON value, so bytes
        that conformed before conform again without a walk of the body (answers repeat: a reused
        session, a ping, a 401); at most `REMEMBERED` of them are kept per response, all forgotten when full.

        Raises:
            UndocumentedResponse: `status` is not documented for the operation.
        """
        valid = self._by_response.get((operation_id, status))
        if valid is None:
            pointer = self.validators.response_schema_pointer(operation_id, status)
            valid = self._by_response.setdefault((operation_id, status), self._by_pointer.get(pointer, _never))
            self._conforming[(operation_id, status)] = set()
        conforming = self._conforming[(operation_id, status)]
        if sent is not None and sent in conforming:
            return []
        if valid(body):
            if sent is not None:
                if len(conforming) >= self.REMEMBERED:
                    conforming.clear()
                conforming.add(sent)
            return []
        return [str(error) for error in self.validators.body_errors(operation_id, status, body)]

    def stream(self, operation_id: str, status: int) -> StreamCheck:
        """A check of one `text/event-stream` answer, to be shown each frame as it is sent.

        Raises:
            UndocumentedResponse: the operation documents no event stream for `status`.
        """
        found = self._streams.get((operation_id, status))
        if found is None:
            raise UndocumentedResponse(operation_id, status, EVENT_STREAM, "no event stream documented")
        schema, valid = found
        return StreamCheck(schema, valid, self.validators)


class StreamCheck:
    """One stream's frames against the spec, in the order they are sent; each call returns its problems."""

    def __init__(self, schema: StreamSchema, valid: Predicate, validators: Validators) -> None:
        self.schema = schema
        self.valid = valid
        self.validators = validators
        self.count = 0
        self.ended_by = ""  # what ended the stream: the end marker or an error frame ("" while it may go on)

    def frame(self, frame: bytes) -> list[str]:
        """The problems of the next frame: its shape, its JSON, its place."""
        self.count += 1
        where = f"stream frame {self.count}"
        if self.ended_by:
            return [f"{where} comes after the stream's end ({self.ended_by}): {frame[:120]!r}"]
        data = _event_data(frame)
        if data is None:
            return [f"{where} is not one server-sent event of `data:` lines: {frame[:120]!r}"]
        if data == self.schema.done:
            self.ended_by = f"data: {self.schema.done}"
            return []
        try:
            value = json.loads(data)
        except ValueError:
            return [f"{where} is neither JSON nor {self.schema.done}: {data[:120]!r}"]
        if isinstance(value, dict) and "error" in value:
            self.ended_by = "an error frame"
        if self.valid(value):
            return []
        errors = self.validators.errors(self.schema.frame_pointer, value)
        return [f"{where}: {error}" for error in errors]

    def end(self) -> list[str]:
        """The problems of the stream's end: it must have sent the end marker or an error frame last."""
        if self.ended_by:
            return []
        return [f"the stream ended after {self.count} frames without `data: {self.schema.done}` or an error frame"]


def _event_data(frame: bytes) -> str | None:
    """The data of a frame that is exactly one SSE event of `data:` lines (joined by newlines), else None."""
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.removesuffix("\n\n").split("\n")
    if not text.endswith("\n\n") or not all(line.startswith("data:") for line in lines):
        return None
    return "\n".join(line[5:].removeprefix(" ") for line in lines)


def _streams(
    spec: Spec, validators: Validators, compiler: Compiler
) -> Iterator[tuple[tuple[str, int], tuple[StreamSchema, Predicate]]]:
    """Each documented event stream, by (operationId, status), with its frame schema compiled."""
    for operation in spec.operations:
        for status in filter(str.isdigit, operation.statuses):
            try:
                schema = validators.stream_schema(operation.operation_id, status)
            except UndocumentedResponse:
                continue
            yield (operation.operation_id, int(status)), (schema, _compiled(compiler, schema.frame_pointer))


def _compiled(compiler: Compiler, pointer: str) -> Predicate:
    """The schema's predicate; one that never passes (jsonschema decides alone) if it cannot be compiled."""
    try:
        return compiler.compile(pointer)
    except Unsupported:
        return _never
