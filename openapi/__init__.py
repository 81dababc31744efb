"""The contract: the OpenAPI documents and the only code that reads them."""

from openapi.document import (
    ADMIN_SPEC_PATH,
    SPEC_PATH,
    Operation,
    Parameter,
    SessionRule,
    Spec,
    load_spec,
    thaw,
)
from openapi.errors import InvalidSpec, SpecError, UndocumentedResponse, UnknownOperation
from openapi.validation import EVENT_STREAM, JSON, BodyError, StreamSchema, Validators, json_path, media_type_key

__all__ = [
    "ADMIN_SPEC_PATH",
    "EVENT_STREAM",
    "JSON",
    "SPEC_PATH",
    "BodyError",
    "InvalidSpec",
    "Operation",
    "Parameter",
    "SessionRule",
    "Spec",
    "SpecError",
    "StreamSchema",
    "UndocumentedResponse",
    "UnknownOperation",
    "Validators",
    "json_path",
    "load_spec",
    "media_type_key",
    "thaw",
]
