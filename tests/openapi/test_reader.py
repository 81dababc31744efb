"""The spec reader: operations, references, cached validators and readable body errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openapi import (
    BodyError,
    InvalidSpec,
    Spec,
    UndocumentedResponse,
    UnknownOperation,
    Validators,
    json_path,
    load_spec,
    media_type_key,
    thaw,
)

MODEL_SESSION = "create_model_session_api_v1_session_modelsession_post"
PING = "ping_session_api_v1_session_pingsession_post"
APPROVE = "approve_spending_api_v1_session_approve_post"
MODELS = "list_models_api_v1_models_get"
SESSION_ID = "0x" + "ab" * 32
VALIDATORS = Validators(load_spec())
SCHEMAS = load_spec().document["components"]["schemas"]


def _document(schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/a": {
                "get": {
                    "operationId": "getA",
                    "parameters": [{"$ref": "#/components/parameters/Q"}],
                    "responses": {
                        "2XX": {"description": "ok", "content": {"text/*": {"schema": {"type": "string"}}}},
                        "204": {"description": "none"},
                    },
                },
                "post": {
                    "operationId": "postA",
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {"200": {"description": "ok", "content": {"*/*": {"schema": {"type": "integer"}}}}},
                },
            }
        },
        "components": {
            "parameters": {"Q": {"name": "q", "in": "query", "schema": {"type": "string"}}},
            "schemas": schemas or {},
        },
    }
    return document


def test_load_spec_reads_the_file_once() -> None:
    assert load_spec() is load_spec()


def test_load_spec_refuses_a_document_that_is_not_openapi_3_1(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\n")
    with pytest.raises(InvalidSpec, match=r"not an OpenAPI 3\.1 document"):
        load_spec(path)


def test_operations_are_read_with_parameters_body_and_statuses() -> None:
    spec = Spec(_document(), name="t.yaml")
    get = spec.operation("getA")
    assert (get.label, get.statuses, get.requires_api_key) == ("GET /a", ("2XX", "204"), False)
    assert [(p.name, p.location, p.required) for p in get.parameters] == [("q", "query", False)]
    assert get.request_body is None
    assert spec.operation("postA").request_body is not None


def test_unknown_operation_names_the_known_ones() -> None:
    with pytest.raises(UnknownOperation, match="no operation has operationId 'nope'; known: getA, postA"):
        Spec(_document(), name="t.yaml").operation("nope")


def test_duplicate_operation_ids_are_refused() -> None:
    document = _document()
    document["paths"]["/b"] = {"get": dict(document["paths"]["/a"]["get"])}
    with pytest.raises(InvalidSpec, match="share an operationId"):
        Spec(document, name="t.yaml")


def test_an_operation_without_operation_id_is_refused() -> None:
    document = _document()
    del document["paths"]["/a"]["post"]["operationId"]
    with pytest.raises(InvalidSpec, match="POST /a has no operationId"):
        Spec(document, name="t.yaml")


def test_resolve_refuses_remote_refs_and_cycles() -> None:
    cycle = {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}
    spec = Spec(_document(cycle), name="t.yaml")
    with pytest.raises(InvalidSpec, match="cycle"):
        spec.resolve({"$ref": "#/components/schemas/A"})
    with pytest.raises(InvalidSpec, match="only local"):
        spec.resolve({"$ref": "other.yaml#/x"})


def test_pointer_names_a_missing_node() -> None:
    spec = load_spec()
    assert spec.pointer("/x-session-rules/0/id") == "R1"
    with pytest.raises(InvalidSpec, match="no node at '/components/schemas/Nope'"):
        spec.pointer("/components/schemas/Nope")
    with pytest.raises(InvalidSpec, match="no node"):
        spec.pointer("/x-session-rules/first")


def test_locate_follows_refs_on_the_way_but_not_at_the_end() -> None:
    spec = load_spec()
    pointer = spec.locate(
        "paths",
        "/api/v1/session/approve",
        "post",
        "responses",
        "401",
        "content",
        "application/json",
        "schema",
    )
    assert pointer == "/components/responses/Unauthorized/content/application~1json/schema"
    assert spec.pointer(pointer) == {"$ref": "#/components/schemas/ErrorDetail"}


def test_response_key_falls_back_to_ranges_and_default() -> None:
    validators = Validators(Spec(_document(), name="t.yaml"))
    assert validators.response_key("getA", 201) == "2XX"
    assert VALIDATORS.response_key(MODELS, 503) == "default"
    with pytest.raises(UndocumentedResponse, match="getA 404 -: status not documented"):
        validators.response_key("getA", 404)


def test_media_types_match_with_parameters_and_wildcards() -> None:
    validators = Validators(Spec(_document(), name="t.yaml"))
    assert validators.for_response("getA", 200, "text/plain; charset=utf-8").is_valid("x")
    assert validators.for_response("postA", 200, "application/xml").is_valid(3)
    assert VALIDATORS.for_response(PING, 200, "application/json; charset=utf-8") is VALIDATORS.for_response(PING, 200)


def test_a_response_without_a_schema_is_undocumented() -> None:
    validators = Validators(Spec(_document(), name="t.yaml"))
    with pytest.raises(UndocumentedResponse, match="no schema for this media type"):
        validators.for_response("getA", 204)
    with pytest.raises(UndocumentedResponse, match="no request body schema"):
        validators.for_request_body("getA")
    with pytest.raises(UndocumentedResponse, match="no request body schema"):
        validators.for_request_body("postA", "text/plain")


def test_request_body_validator_admits_lax_values() -> None:
    validator = VALIDATORS.for_request_body(MODEL_SESSION)
    assert validator.is_valid({"sessionDuration": " 42 ", "failover": "yes", "extra": 1})
    assert not validator.is_valid({"sessionDuration": 1.5})
    assert VALIDATORS.for_request_body(MODEL_SESSION) is validator


def test_validators_are_built_once_per_pointer() -> None:
    assert VALIDATORS.for_component("SessionId") is VALIDATORS.for_pointer("/components/schemas/SessionId")
    with pytest.raises(InvalidSpec):
        VALIDATORS.for_component("Nope")


def test_body_errors_name_the_path_and_the_keyword() -> None:
    body = {
        "success": True,
        "message": "created",
        "session_id": "0x12",
        "api_key_prefix": "sk-AbC123",
        "model": "m",
        "x": 1,
    }
    errors = VALIDATORS.body_errors(MODEL_SESSION, 200, body)
    assert [(error.path, error.keyword) for error in errors] == [
        ("$", "additionalProperties"),
        ("$.message", "const"),
        ("$.session_id", "pattern"),
    ]
    assert str(errors[2]) == (
        "$.session_id: '0x12' does not match '^0x[0-9a-f]{64}$(?!\\\\n)' "
        "[pattern at /components/schemas/ModelSessionCreated/properties/session_id/pattern]"
    )


def test_a_valid_body_has_no_errors() -> None:
    assert (
        VALIDATORS.body_errors(
            PING,
            200,
            {"status": "alive", "message": "Session is alive", "session_id": SESSION_ID, "success": True},
        )
        == []
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"status": "alive", "message": "Session is alive", "success": True},
            ("$", "required", "/components/schemas/PingAlive/required"),
            id="missing-session-id",
        ),
        pytest.param(
            {"status": "weird"},
            ("$.status", "discriminator", "/components/schemas/SessionPing/oneOf"),
            id="unknown-status",
        ),
        pytest.param(
            {"status": ["alive"]},
            ("$.status", "discriminator", "/components/schemas/SessionPing/oneOf"),
            id="status-not-a-string",
        ),
    ],
)
def test_ping_errors_follow_the_discriminator(body: dict[str, Any], expected: tuple[str, str, str]) -> None:
    errors = VALIDATORS.body_errors(PING, 200, body)
    assert [(error.path, error.keyword, error.schema_path) for error in errors] == [expected]


def test_discriminated_branch_errors_keep_their_place_in_the_instance() -> None:
    holder = {"type": "object", "properties": {"ping": {"$ref": "#/components/schemas/SessionPing"}}}
    copied = {name: thaw(SCHEMAS[name]) for name in SCHEMAS if name.startswith(("Ping", "SessionPing", "SessionId"))}
    spec = Spec(_document({"Holder": holder, **copied}), name="t.yaml")
    errors = Validators(spec).errors(
        "/components/schemas/Holder",
        {"ping": {"status": "alive", "message": "Session is alive", "success": "yes"}},
    )
    assert {(error.path, error.keyword) for error in errors} == {
        ("$.ping", "required"),
        ("$.ping.success", "const"),
    }


def test_one_of_without_discriminator_reports_the_closest_branch() -> None:
    errors = VALIDATORS.body_errors(APPROVE, 200, {"tx": "bad"})
    assert [(error.path, error.keyword) for error in errors] == [("$.tx", "pattern")]
    errors = VALIDATORS.body_errors(MODEL_SESSION, 500, {"detail": 5})
    assert [(error.path, error.keyword) for error in errors] == [("$.detail", "type")]


def test_long_messages_are_shortened_in_the_middle() -> None:
    (error,) = VALIDATORS.body_errors(PING, 200, {"status": "error", "message": "x" * 1000, "success": False})
    assert error.keyword == "pattern"
    assert " ... " in error.message
    assert len(error.message) < 300


def test_close_result_ties_a_null_session_id_to_the_no_session_message() -> None:
    close = "close_session_api_v1_session_closesession_post"
    body = {"success": True, "message": "No active session found to close", "session_id": SESSION_ID}
    assert [(e.path, e.keyword) for e in VALIDATORS.body_errors(close, 200, body)] == [("$.session_id", "type")]
    body = {"success": True, "message": "Session closed successfully", "session_id": None}
    assert ("$.session_id", "oneOf") not in [(e.path, e.keyword) for e in VALIDATORS.body_errors(close, 200, body)]
    assert VALIDATORS.body_errors(close, 200, body) != []


@pytest.mark.parametrize(("parts", "text"), [((), "$"), (("data", 0, "id"), "$.data[0].id")])
def test_json_path(parts: tuple[str | int, ...], text: str) -> None:
    assert json_path(parts) == text


def test_media_type_key_drops_parameters() -> None:
    assert media_type_key("Application/JSON; charset=utf-8") == "application/json"


def test_body_error_is_a_value() -> None:
    assert BodyError("$", "type", "m", "/s") == BodyError("$", "type", "m", "/s")
