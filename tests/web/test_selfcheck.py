"""The self-check's compiled schemas say "valid" exactly when jsonschema does, and reports are unchanged."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from mockserver.web.selfcheck import Compiler, ResponseChecks, Unsupported, json_equal
from openapi import Spec, UndocumentedResponse, Validators, load_spec, thaw

SPEC = load_spec()
VALIDATORS = Validators(SPEC)
CHECKS = ResponseChecks(SPEC, VALIDATORS)
COMPILER = Compiler(SPEC)
PING = "ping_session_api_v1_session_pingsession_post"
MODEL = "create_model_session_api_v1_session_modelsession_post"
SESSION_ID = "0x" + "ab" * 32

# Values of every JSON type, and the Python look-alikes that JSON typing tells apart.
ODD_VALUES: list[Any] = [None, True, False, 0, 1, -3, 1.0, 1.5, "", "x", SESSION_ID, [], [1], {}, {"a": 1}]


def _response_examples() -> Iterator[tuple[str, Any]]:
    """(schema pointer, example body) for every documented response example of the contract."""
    for operation in SPEC.operations:
        for status in operation.statuses:
            pointer = VALIDATORS.response_schema_pointer(operation.operation_id, status)
            response = SPEC.resolve(operation.node["responses"][status])
            for example in response["content"]["application/json"].get("examples", {}).values():
                yield pointer, thaw(example["value"])


EXAMPLES = list(_response_examples())


def _mutations(body: Any) -> Iterator[Any]:
    """The body, then with each field dropped, replaced by an odd value, and with an extra field."""
    yield body
    yield from ODD_VALUES
    if isinstance(body, dict):
        for name in body:
            yield {key: value for key, value in body.items() if key != name}
            for value in ODD_VALUES:
                yield {**body, name: value}
            yield from ({**body, name: mutated} for mutated in _mutations(body[name]) if mutated is not body[name])
        yield {**body, "extra": 1}
    if isinstance(body, list):
        yield []
        yield [*body, *body]
        for index, item in enumerate(body):
            for mutated in _mutations(item):
                changed = copy.copy(body)
                changed[index] = mutated
                yield changed


def _agree(spec: Spec, pointer: str, value: Any) -> None:
    compiled = Compiler(spec).compile(pointer)
    assert compiled(value) is Validators(spec).for_pointer(pointer).is_valid(value), (pointer, value)


def test_every_documented_response_schema_is_compiled() -> None:
    pointers = {pointer for pointer, _ in EXAMPLES}
    assert pointers
    for pointer in pointers:
        COMPILER.compile(pointer)  # raises Unsupported otherwise


@pytest.mark.parametrize(("pointer", "body"), EXAMPLES, ids=lambda item: item if isinstance(item, str) else "")
def test_compiled_schemas_agree_with_jsonschema_on_examples_and_their_mutations(pointer: str, body: Any) -> None:
    compiled = COMPILER.compile(pointer)
    validator = VALIDATORS.for_pointer(pointer)
    assert compiled(body) is True
    for value in _mutations(body):
        assert compiled(value) is validator.is_valid(value), value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@given(st.sampled_from(EXAMPLES), st.data())
@settings(derandomize=True, database=None, max_examples=400)
def test_compiled_schemas_agree_with_jsonschema_on_random_fields(example: tuple[str, Any], data: st.DataObject) -> None:
    pointer, body = example
    if isinstance(body, dict) and body:
        name = data.draw(st.sampled_from(sorted(body)))
        body = {**body, name: data.draw(json_values)}
    else:
        body = data.draw(json_values)
    assert COMPILER.compile(pointer)(body) is VALIDATORS.for_pointer(pointer).is_valid(body)


def _spec(**schemas: Any) -> Spec:
    return Spec(
        {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "components": {"schemas": schemas}}, name="t"
    )


@pytest.mark.parametrize(
    ("schema", "values"),
    [
        ({"type": "number"}, ODD_VALUES),
        ({"type": ["string", "null"]}, ODD_VALUES),
        ({"type": "integer"}, ODD_VALUES),
        ({"enum": [0, 1, None, [1], {"a": 1}]}, ODD_VALUES),
        ({"const": 1}, ODD_VALUES),
        ({"const": [1]}, [*ODD_VALUES, [True], (1,), [1.0]]),
        ({"const": {"a": 1}}, [*ODD_VALUES, {"a": True}, {"b": 1}, {"a": 1, "b": 1}]),
        ({"enum": ["a", "b"]}, [*ODD_VALUES, "a", "c"]),
        (
            {"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}},
            [
                *ODD_VALUES,
                {"a": "x", "b": 1},
                {"a": "x", "b": "y"},
                {"a": 1},
            ],
        ),
        ({"additionalProperties": True}, ODD_VALUES),
        ({"type": "object", "required": ["a"], "additionalProperties": {"const": 1}}, [*ODD_VALUES, {"a": 2, "b": 1}]),
        ({"type": ["object", "null"], "required": ["a"]}, [*ODD_VALUES, {"a": None}]),
        ({"type": "object"}, ODD_VALUES),
        ({"if": {"required": ["a"]}}, ODD_VALUES),
        ({"if": {"required": ["a"]}, "else": False}, ODD_VALUES),
        ({"if": {"required": ["a"]}, "then": {"properties": {"a": {"const": 1}}}}, ODD_VALUES),
        ({"then": False, "else": False}, ODD_VALUES),  # without `if` they are ignored
        ({"anyOf": [{"type": "string"}, {"type": "integer"}], "minItems": 1}, ODD_VALUES),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, ODD_VALUES),
        ({"items": {"type": "integer"}, "minItems": 2}, [*ODD_VALUES, [1, 2], [1, "x"]]),
        ({"type": "string", "pattern": "^a", "x-note": 1, "title": "t"}, [*ODD_VALUES, "ab", "ba"]),
        (True, ODD_VALUES),
        (False, ODD_VALUES),
    ],
)
def test_compiled_keywords_agree_with_jsonschema(schema: Any, values: list[Any]) -> None:
    spec = _spec(S=schema)
    for value in values:
        _agree(spec, "/components/schemas/S", value)


def test_a_ref_cycle_compiles_and_validates_through_itself() -> None:
    spec = _spec(Tree={"type": "object", "properties": {"child": {"$ref": "#/components/schemas/Tree"}}})
    values: list[Any] = [{}, {"child": {}}, {"child": {"child": 1}}, {"child": {"child": {"child": {}}}}]
    for value in values:
        _agree(spec, "/components/schemas/Tree", value)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "format": "date"},
        {"type": "strange"},
        {"$ref": "other.yaml#/x"},
        {"patternProperties": {"^a": {}}, "additionalProperties": False},
        {"prefixItems": [{}], "items": False},
        {"properties": {"a": 5}},
    ],
)
def test_what_the_compiler_does_not_reproduce_is_refused(schema: Any) -> None:
    with pytest.raises(Unsupported):
        Compiler(_spec(S=schema)).compile("/components/schemas/S")


def test_a_refused_schema_leaves_nothing_half_built() -> None:
    compiler = Compiler(
        _spec(
            Good={"type": "string"},
            Loop={"properties": {"a": {"$ref": "#/components/schemas/Loop"}, "b": {"format": "date"}}},
        )
    )
    good = compiler.compile("/components/schemas/Good")
    with pytest.raises(Unsupported):
        compiler.compile("/components/schemas/Loop")
    assert compiler.compile("/components/schemas/Good") is good
    with pytest.raises(Unsupported):
        compiler.compile("/components/schemas/Loop")


def test_json_equal_is_jsonschemas_equality() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(1, True)
    assert not json_equal([0], [False])
    assert json_equal({"a": [1]}, {"a": [1.0]})
    assert not json_equal({"a": 1}, {"b": 1})
    assert not json_equal("1", 1)


def test_problems_are_jsonschemas_messages() -> None:
    body = {"status": "alive", "message": "Session is alive", "success": True}
    expected = [str(error) for error in VALIDATORS.body_errors(PING, 200, body)]
    assert expected
    assert CHECKS.problems(PING, 200, body) == expected
    assert CHECKS.problems(PING, 200, {**body, "session_id": SESSION_ID}) == []


def test_an_undocumented_status_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(UndocumentedResponse):
            CHECKS.problems(MODEL, 418, {})


def test_a_schema_that_cannot_be_compiled_is_left_to_jsonschema() -> None:
    document = thaw(SPEC.document)
    document["components"]["schemas"]["ErrorDetail"]["properties"]["detail"]["format"] = "hostname"
    spec = Spec(document, name="with-format")
    validators = Validators(spec)
    checks = ResponseChecks(spec, validators)
    assert checks.problems(MODEL, 400, {"detail": "example.com"}) == []
    assert checks.problems(MODEL, 400, {"detail": 5}) == [
        str(e) for e in validators.body_errors(MODEL, 400, {"detail": 5})
    ]


def test_a_response_without_a_json_schema_is_skipped_at_start_and_refused_when_answered() -> None:
    document = thaw(SPEC.document)
    document["paths"]["/api/v1/models"]["get"]["responses"]["204"] = {"description": "no body"}
    spec = Spec(document, name="with-204")
    checks = ResponseChecks(spec, Validators(spec))
    with pytest.raises(UndocumentedResponse):
        checks.problems("list_models_api_v1_models_get", 204, None)


def test_bytes_that_conformed_before_are_not_walked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = ResponseChecks(SPEC, VALIDATORS)
    body = {"detail": "Invalid model"}
    sent = b'{"detail":"Invalid model"}'
    assert checks.problems(MODEL, 400, body, sent) == []
    monkeypatch.setattr(checks, "_by_response", {(MODEL, 400): lambda value: pytest.fail("walked again")})
    assert checks.problems(MODEL, 400, body, sent) == []


def test_the_remembered_bytes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ResponseChecks, "REMEMBERED", 2)
    checks = ResponseChecks(SPEC, VALIDATORS)
    for number in range(3):
        assert checks.problems(MODEL, 400, {"detail": "x"}, b'{"detail":"x"}' + b" " * number) == []
    assert checks._conforming[(MODEL, 400)] == {b'{"detail":"x"}  '}


def test_bytes_that_broke_the_contract_are_not_remembered() -> None:
    checks = ResponseChecks(SPEC, VALIDATORS)
    assert checks.problems(MODEL, 400, {"detail": 5}, b'{"detail":5}') != []
    assert checks._conforming[(MODEL, 400)] == set()
