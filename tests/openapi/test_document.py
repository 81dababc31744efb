"""The contract document: valid OpenAPI 3.1, complete, and true to the gateway."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis.core.result import Ok

from openapi import SPEC_PATH, Spec, Validators, load_spec, thaw

SPEC = load_spec()
VALIDATORS = Validators(SPEC)
MODELS_LIST = "list_models_api_v1_models_get"
SHARED_ERROR_SCHEMAS = {
    "#/components/schemas/ErrorDetail",
    "#/components/schemas/HTTPValidationError",
    "#/components/schemas/ServerError",
    "#/components/schemas/HttpsRequiredError",
    "#/components/schemas/ChatError",
}
# Every status, body text and error string of gateway-behaviour.md section 3 (and 5.2) must be in the spec.
GATEWAY_STRINGS = [
    "API key missing",
    "Invalid API key format. Must start with sk-",
    "Invalid API key",
    "API key not associated with a valid user",
    "API key not found",
    "No private key found and no fallback key configured",
    "Expected hex string starting with '0x'",
    "No session ID found in proxy router response",
    "Error getting default model: ",
    "Error from proxy router: Failed to create session: HTTP 500: ",
    "Error from proxy router: Failed to create session: Request failed after 3 attempts: ",
    "Unexpected error: 500: Session created but not valid in proxy router",
    "Unexpected error: 500: Failed to create new session",
    "Unexpected error: Session automation is disabled. Please enable it in your Account settings to use Chat.",
    "Unexpected error validating API key: ",
    "Error from proxy router: Failed to create bid session: HTTP 500: ",
    "Unexpected error: 500: Missing required environment variables: ",
    "Unexpected error: 400: No private key found and no fallback key configured",
    "Unexpected error: 500: Invalid session response from proxy-router - no session ID found",
    "Session created and associated with API key",
    "Private Key not set, using fallback key (FOR DEBUGGING ONLY)",
    "No active session found to close",
    "Expired session marked as inactive",
    "Session closed successfully",
    "Error closing session: 500: Failed to close session",
    "Error closing session: ",
    "No active session found for this API key",
    "Session is expired and has been marked as inactive",
    "Session is alive",
    "Session is dead and has been closed",
    "Error checking session status: ",
    "No response received from chat completion",
    "PrivateKeyNotFound",
    "No private key found and no fallback key configured. Please set up your private key.",
    "JSON decode error",
    "Expecting property name enclosed in double quotes",
    "Field required",
    "Input should be a valid integer, unable to parse string as an integer",
    "Input should be a valid boolean, unable to interpret input",
    "Input should be a valid dictionary or object to extract fields from",
    "HTTPS Required",
    "This API requires HTTPS. Please use the secure endpoint.",
    "Error fetching active models: ",
    # chat-completions.md section 2.11 and 3 (chat completions and embeddings)
    "Session automation is disabled. Please enable it in your Account settings to use Chat.",
    "Error handling session: Failed to create session: HTTP 500: ",
    "No session ID provided in request and no active session found for API key",
    "Embeddings request failed: HTTP 500: ",
    "Embeddings request failed: Request failed after 3 attempts: ",
    "Request failed after 2 attempts: ",
    "Failed to create chat completions stream: ",
    "Input should be a valid list",
    "Input should be a valid string",
]


def _flat_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield " ".join(node.split())
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from _flat_strings(value)
    elif isinstance(node, tuple):
        for item in node:
            yield from _flat_strings(item)


def _examples() -> Iterator[tuple[str, str, Any]]:
    """(label, schema pointer, example value) for every example in the document."""
    for operation in SPEC.operations:
        for status in operation.statuses:
            response = SPEC.resolve(operation.node["responses"][status])
            for media, content in response.get("content", {}).items():
                pointer = VALIDATORS.response_schema_pointer(operation.operation_id, status, media)
                for name, example in content.get("examples", {}).items():
                    yield f"{operation.operation_id} {status} {name}", pointer, example["value"]
        if operation.request_body is not None:
            pointer = VALIDATORS.request_schema_pointer(operation.operation_id)
            for name, example in operation.request_body["content"]["application/json"]["examples"].items():
                yield f"{operation.operation_id} request {name}", pointer, example["value"]
        for index, parameter in enumerate(operation.parameters):
            pointer = f"/paths/{operation.path.replace('/', '~1')}/{operation.method.lower()}/parameters/{index}/schema"
            yield (
                f"{operation.operation_id} {parameter.name}",
                pointer,
                operation.node["parameters"][index]["example"],
            )
    for name, schema in SPEC.document["components"]["schemas"].items():
        if "example" in schema:
            yield f"schema {name}", f"/components/schemas/{name}", schema["example"]


EXAMPLES = list(_examples())


def _mutant(value: Any) -> Any:
    """A copy with its first field (or itself) wrapped in lists: the wrong type for every schema here."""
    if isinstance(value, Mapping) and value:
        first = next(iter(value))
        return {**value, first: [[value[first]]]}
    return [value]


def test_document_is_valid_openapi_3_1() -> None:
    document = thaw(SPEC.document)
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_document_describes_the_eight_operations() -> None:
    assert {(op.method, op.path) for op in SPEC.operations} == {
        ("POST", "/api/v1/session/modelsession"),
        ("POST", "/api/v1/session/bidsession"),
        ("POST", "/api/v1/session/closesession"),
        ("POST", "/api/v1/session/pingsession"),
        ("POST", "/api/v1/session/approve"),
        ("GET", "/api/v1/models"),
        ("POST", "/api/v1/chat/completions"),
        ("POST", "/api/v1/embeddings"),
    }


@pytest.mark.parametrize(
    ("operation_id", "summary"),
    [
        ("create_model_session_api_v1_session_modelsession_post", "Create Model Session"),
        ("create_bid_session_api_v1_session_bidsession_post", "Create Bid Session"),
        ("close_session_api_v1_session_closesession_post", "Close Session"),
        ("ping_session_api_v1_session_pingsession_post", "Ping Session"),
        ("approve_spending_api_v1_session_approve_post", "Approve Spending"),
        (MODELS_LIST, "List Models"),
        ("create_chat_completion_api_v1_chat_completions_post", "Create Chat Completion"),
        ("create_embeddings_api_v1_embeddings_post", "Create Embeddings"),
    ],
)
def test_operations_keep_the_gateways_ids_and_summaries(operation_id: str, summary: str) -> None:
    assert SPEC.operation(operation_id).summary == summary


@pytest.mark.parametrize("operation", SPEC.operations, ids=lambda op: op.operation_id)
def test_every_operation_but_the_models_list_requires_the_api_key(operation: Any) -> None:
    assert operation.requires_api_key is (operation.operation_id != MODELS_LIST)
    if operation.requires_api_key:
        assert "401" in operation.statuses


def test_api_key_scheme_is_the_authorization_header() -> None:
    scheme = SPEC.document["components"]["securitySchemes"]["APIKeyAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "JWT" in scheme["description"]
    assert "9 characters" in scheme["description"]


@pytest.mark.parametrize("operation", SPEC.operations, ids=lambda op: op.operation_id)
def test_every_error_response_uses_the_shared_error_schemas(operation: Any) -> None:
    for status in operation.statuses:
        if status != "default" and int(status) < 400:
            continue
        response = SPEC.resolve(operation.node["responses"][status])
        schema = response["content"]["application/json"]["schema"]
        assert schema["$ref"] in SHARED_ERROR_SCHEMAS, (operation.operation_id, status)
        if status == "422":
            assert schema["$ref"] == "#/components/schemas/HTTPValidationError"
        if status == "401":
            header = SPEC.resolve(response["headers"]["WWW-Authenticate"])
            assert header["required"] is True
            assert header["schema"]["const"] == "Bearer"


@pytest.mark.parametrize("operation", SPEC.operations, ids=lambda op: op.operation_id)
def test_every_response_has_an_example(operation: Any) -> None:
    for status in operation.statuses:
        response = SPEC.resolve(operation.node["responses"][status])
        for media, content in response["content"].items():
            assert content.get("examples"), (operation.operation_id, status, media)


@pytest.mark.parametrize(("label", "pointer", "example"), EXAMPLES, ids=[label for label, _, _ in EXAMPLES])
def test_every_example_validates_and_a_mutated_copy_does_not(label: str, pointer: str, example: Any) -> None:
    assert VALIDATORS.errors(pointer, thaw(example)) == []
    assert VALIDATORS.errors(pointer, _mutant(thaw(example))) != []


def test_the_seed_request_is_the_request_example() -> None:
    body = SPEC.operation("create_model_session_api_v1_session_modelsession_post").request_body
    assert body is not None
    example = body["content"]["application/json"]["examples"]["seed"]["value"]
    assert thaw(example) == {"sessionDuration": 3600, "directPayment": False, "failover": False}


def test_request_body_defaults_are_the_gateways() -> None:
    properties = SPEC.document["components"]["schemas"]["SessionDataRequest"]["properties"]
    assert {name: node["default"] for name, node in properties.items()} == {
        "sessionDuration": 3600,
        "directPayment": False,
        "failover": False,
    }


@pytest.mark.parametrize("text", GATEWAY_STRINGS)
def test_every_gateway_string_is_in_the_spec(text: str) -> None:
    assert any(text in flat for flat in _flat_strings(SPEC.document)), text


def test_session_rules_are_unique_and_each_is_cited_by_an_operation() -> None:
    ids = [rule.id for rule in SPEC.session_rules]
    assert ids == [f"R{n}" for n in range(1, 9)] + [f"C{n}" for n in range(1, 7)]
    cited = {rule for operation in SPEC.operations for rule in operation.session_rules}
    assert cited == set(ids)
    assert all(rule.text for rule in SPEC.session_rules)


def test_session_rules_are_cited_in_the_response_descriptions() -> None:
    text = " ".join(_flat_strings(SPEC.document["paths"]))
    for rule in ("R1", "R2", "R3", "R4", "R5", "C1", "C2", "C3", "C4", "C5", "C6"):
        assert re.search(rf"\b{rule}\b", text), rule


@pytest.mark.parametrize(
    "operation_id",
    [
        "create_model_session_api_v1_session_modelsession_post",
        "create_bid_session_api_v1_session_bidsession_post",
    ],
)
def test_create_operations_link_to_ping_and_close(operation_id: str) -> None:
    links = SPEC.operation(operation_id).node["responses"]["200"]["links"]
    targets = {SPEC.resolve(link)["operationId"] for link in links.values()}
    assert targets == {
        "ping_session_api_v1_session_pingsession_post",
        "close_session_api_v1_session_closesession_post",
    }


def _draw_one(operation: Any) -> list[Any]:
    drawn: list[Any] = []

    @given(operation.as_strategy())
    @settings(max_examples=3, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def draw(case: Any) -> None:
        drawn.append(case)

    draw()
    return drawn


def test_schemathesis_generates_a_case_for_every_operation() -> None:
    schema = schemathesis.openapi.from_path(SPEC_PATH)
    labels = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        assert _draw_one(operation), operation.label
        labels.append(operation.label)
    assert sorted(labels) == sorted(operation.label for operation in SPEC.operations)


def test_spec_object_is_shared_and_read_only() -> None:
    assert load_spec() is SPEC
    assert isinstance(SPEC, Spec)
    with pytest.raises(TypeError):
        SPEC.document["openapi"] = "3.0.0"  # type: ignore[index]
