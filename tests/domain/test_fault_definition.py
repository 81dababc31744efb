"""The fault definition is one: FaultKind, catalogue.STEPS and FaultRequest's options. admin.yaml's fault
schemas, the fixture's `fault(...)` and the README's fault tables are checked against it here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from mockserver.domain import STEPS, FaultKind, FaultOptions, FaultPlan, FaultRequest, InvalidFault, Step, immediate
from mockserver.domain.faults import FAULT_DEFAULTS, fault_options
from mockserver.testing import MorpheusMock
from openapi import ADMIN_SPEC_PATH, load_spec

ADMIN = load_spec(ADMIN_SPEC_PATH)
README = Path(__file__).parents[2] / "README.md"
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
BOUNDS = {"minimum": "minimum", "maximum": "maximum", "exclusive_minimum": "exclusiveMinimum"}


def _schema(name: str) -> Any:
    return ADMIN.pointer(f"/components/schemas/{name}")


def test_every_kind_is_taken_at_a_step_and_every_step_takes_a_kind() -> None:
    taken = {kind for kinds in STEPS.values() for kind in kinds}
    assert taken == set(FaultKind)
    assert set(STEPS) == set(Step)
    assert all(len(set(kinds)) == len(kinds) for kinds in STEPS.values())


def test_admin_yaml_fault_kinds_are_the_domains() -> None:
    assert list(_schema("FaultKind")["enum"]) == [kind.value for kind in FaultKind]


def test_admin_yaml_fault_request_is_the_domains_definition() -> None:
    schema = _schema("FaultRequest")
    properties = schema["properties"]
    assert list(properties) == ["kind", *fault_options()]
    assert list(schema["required"]) == ["kind"]
    for name, (types, rule) in fault_options().items():
        node = properties[name]
        json_types = {JSON_TYPES[t] for t in types if t is not type(None)} - ({"integer"} if float in types else set())
        assert {node["type"]} == json_types, name
        for field, keyword in BOUNDS.items():
            assert node.get(keyword) == getattr(rule, field), (name, keyword)
        for text in dict(node.get("x-refusal", {})).values():
            assert text == f"{name} must be {rule.words}, got {{value}}", name


def test_admin_yaml_fault_answer_is_the_domains() -> None:
    armed = immediate(FaultPlan().arm(FaultKind.LATENCY, seconds=1))
    assert set(_schema("Fault")["properties"]) == set(armed.to_json())


def test_the_fixtures_fault_takes_the_domains_options() -> None:
    hints = get_type_hints(FaultOptions)
    fields = {name: hint for name, hint in get_type_hints(FaultRequest).items() if name not in ("kind", "key")}
    assert hints == fields
    parameters = inspect.signature(MorpheusMock.fault).parameters
    assert list(parameters) == ["self", "kind", "key", "options"]
    assert "Unpack[FaultOptions]" in str(parameters["options"].annotation)


def test_every_option_has_a_default_and_a_rule() -> None:
    assert list(FAULT_DEFAULTS) == list(fault_options())
    assert all(rule.doc for _, rule in fault_options().values())


def render_fault_tables() -> str:
    """The README's fault tables, from the definition."""
    lines = ["| kind | taken at |", "|---|---|"]
    for kind in FaultKind:
        lines.append(f"| `{kind.value}` | {'; '.join(step.value for step, kinds in STEPS.items() if kind in kinds)} |")
    lines += ["", "| option | type | accepts | for | meaning |", "|---|---|---|---|---|"]
    for name, (types, rule) in fault_options().items():
        json_types = " or ".join(dict.fromkeys(JSON_TYPES[t] for t in types if not (t is int and float in types)))
        kinds = "every kind" if rule.scope is None else _kinds(rule.scope.kinds)
        lines.append(f"| `{name}` | {json_types} | {rule.words or 'any'} | {kinds} | {rule.doc} |")
    return "\n".join(lines)


def _kinds(kinds: frozenset[FaultKind]) -> str:
    if len(kinds) > len(FaultKind) / 2:
        return "every kind but " + ", ".join(f"`{k.value}`" for k in FaultKind if k not in kinds)
    return ", ".join(f"`{k.value}`" for k in FaultKind if k in kinds)


def test_the_readme_fault_tables_are_the_definitions() -> None:
    found = re.search(r"<!-- fault-tables -->\n(.*?)\n<!-- /fault-tables -->", README.read_text(), re.DOTALL)
    assert found is not None, "README.md has no <!-- fault-tables --> block"
    assert found.group(1) == render_fault_tables(), "README's fault tables drifted; paste:\n" + render_fault_tables()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "nope"}, "kind must be one of create_fail, verify_fail"),
        ({}, "kind must be one of"),
        ({"kind": "ping_dead", "colour": "red"}, "unknown fields: colour; allowed: kind, key, count"),
        ({"kind": "ping_dead", "count": "2"}, "count must be an integer or null, got '2'"),
        ({"kind": "ping_dead", "retries": 1}, "retries must be true or false, got 1"),
        ({"kind": "latency", "seconds": True}, "seconds must be a number, got True"),
    ],
)
def test_a_fault_request_is_validated_in_the_domain(body: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidFault, match=re.escape(message)):
        FaultRequest.from_json(body)


def test_a_valid_json_request_is_the_same_request() -> None:
    request = FaultRequest.from_json({"kind": "create_fail", "count": 1, "status": 502, "duration": 5})
    assert request == FaultRequest(FaultKind.CREATE_FAIL, count=1, status=502, duration=5)
