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
from openapi.recording import (
    RECORDING_SCHEMA_PATH,
    RECORDING_VERSION,
    RecordingError,
    alias,
    aliased_key,
    hide_keys,
    new_recording,
    read_recording,
    recording_errors,
    write_recording,
)
from openapi.validation import EVENT_STREAM, JSON, BodyError, StreamSchema, Validators, json_path, media_type_key

__all__ = [
    "ADMIN_SPEC_PATH",
    "EVENT_STREAM",
    "JSON",
    "RECORDING_SCHEMA_PATH",
    "RECORDING_VERSION",
    "SPEC_PATH",
    "BodyError",
    "InvalidSpec",
    "Operation",
    "Parameter",
    "RecordingError",
    "SessionRule",
    "Spec",
    "SpecError",
    "StreamSchema",
    "UndocumentedResponse",
    "UnknownOperation",
    "Validators",
    "alias",
    "aliased_key",
    "hide_keys",
    "json_path",
    "load_spec",
    "media_type_key",
    "new_recording",
    "read_recording",
    "recording_errors",
    "thaw",
    "write_recording",
]
