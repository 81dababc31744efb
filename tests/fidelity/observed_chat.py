"""The sequences of shared/reference/observed-v1.14.0.md section 7 (chat completions and embeddings) as data.

Texts are copied from the observation record, not from the mock's constants. A chat step's expected
body is the recorded JSON, or one of the shapes below for the answers the record gives by kind only
(`COMPLETION`: a `chat.completion`; `EMBEDDINGS`: an embeddings list; `STREAM_DONE`: a 200
`text/event-stream` ending `data: [DONE]`); a streamed failure is the recorded bytes of its one frame.
`S1`, `S2` stand for session ids as in observed.py; `U` is the id no one opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fidelity.observed import (
    LLAMA,
    MISTRAL,
    NO_SESSION,
    QWEN,
    Step,
    alive,
    close,
    closed,
    created,
    dead,
    detail,
    model,
    ping,
)

BGE = "text-embedding-bge-m3"
U = "0x" + "ab" * 32
COMPLETION, EMBEDDINGS, STREAM_DONE = "<chat.completion>", "<embeddings list>", "<stream ending [DONE]>"
AUTOMATION_OFF = "Session automation is disabled. Please enable it in your Account settings to use Chat."
NOT_FOUND = 'HTTP 500: {"error":"session not found"}'
NOT_FOUND_FRAME = (
    'data: {"error": {"message": "HTTP 500: {\\"error\\":\\"session not found\\"}", "type": "server_error", '
    '"status": 500}}\n\n'
)
EXPIRED_ERROR = {"error": {"message": 'HTTP 500: {"error":"session expired"}', "type": "server_error"}}
NOT_FOUND_ERROR = {"error": {"message": NOT_FOUND, "type": "server_error"}}
UNKNOWN_USER = detail("API key not associated with a valid user")
INVALID_KEY = detail("Invalid API key")


@dataclass(frozen=True)
class Setup:
    """How the mock is started for a sequence: the system-wide automation flag, the key used."""

    automation: bool = True
    key: str = "key"  # "key", "revoked" (with --revoked-keys-work) or "orphan"
    steps: tuple[Step, ...] = field(default_factory=tuple)


def chat(model_name: str | None = MISTRAL, status: int = 200, body: Any = COMPLETION, **fields: Any) -> Step:
    """`POST /api/v1/chat/completions` with `{"model": M, "messages": [hello], **fields}` (None: no model)."""
    request = {"model": model_name, "messages": [{"role": "user", "content": "hello"}], **fields}
    if model_name is None:
        del request["model"]
    return Step("chat", request, status=status, body=body)


def stream(model_name: str = MISTRAL, status: int = 200, body: Any = STREAM_DONE, **fields: Any) -> Step:
    return chat(model_name, status, body, stream=True, **fields)


def emb(model_name: str | None = BGE, status: int = 200, body: Any = EMBEDDINGS, **fields: Any) -> Step:
    request = {"model": model_name, "input": "hello", **fields}
    if model_name is None:
        del request["model"]
    return Step("emb", request, status=status, body=body)


S1_MISTRAL = model(MISTRAL, body=created("S1", MISTRAL))
OFF = False

SEQUENCES: dict[str, Setup] = {
    # A.1 Automation off: the refused switch closed S1 on chain, the rollback kept its row active.
    "A.1 refused switch leaves S1 dead": Setup(
        OFF, steps=(S1_MISTRAL, chat(LLAMA, 403, detail(AUTOMATION_OFF)), ping(dead("S1")), ping(NO_SESSION))
    ),
    # A.2 ...and a chat on S1's model reuses the closed session: the upstream says it expired.
    "A.2 reuse of the closed session": Setup(
        OFF,
        steps=(
            S1_MISTRAL,
            chat(LLAMA, 403, detail(AUTOMATION_OFF)),
            chat(MISTRAL, 500, EXPIRED_ERROR),
            close(closed("S1")),
            ping(NO_SESSION),
        ),
    ),
    "A.3 automation off, reuse works": Setup(OFF, steps=(S1_MISTRAL, chat(), stream(), ping(alive("S1")))),
    "A.4 automation off, fresh key": Setup(
        OFF,
        steps=(
            chat(MISTRAL, 403, detail(AUTOMATION_OFF)),
            stream(MISTRAL, 403, detail(AUTOMATION_OFF)),
            ping(NO_SESSION),
            emb(BGE, 500, detail(f"Error handling session: {AUTOMATION_OFF}")),
            ping(NO_SESSION),
        ),
    ),
    "A.5 automation off, a body session_id": Setup(
        OFF, steps=(chat(MISTRAL, 500, NOT_FOUND_ERROR, session_id=U), ping(NO_SESSION))
    ),
    "A.6 unknown body session_id": Setup(
        steps=(
            chat(),
            ping(alive("S1")),
            chat(MISTRAL, 500, NOT_FOUND_ERROR, session_id=U),
            ping(alive("S1")),
        )
    ),
    "A.6 unknown body session_id, fresh key": Setup(
        steps=(
            chat(LLAMA, 500, NOT_FOUND_ERROR, session_id=U),
            ping(NO_SESSION),
            stream(MISTRAL, 200, NOT_FOUND_FRAME, session_id=U),
            emb(BGE, 500, detail(f"Embeddings request failed: {NOT_FOUND}"), session_id=U),
            ping(NO_SESSION),
        )
    ),
    "A.7 revoked key": Setup(
        key="revoked",
        steps=(
            ping(NO_SESSION),
            chat(MISTRAL, 401, INVALID_KEY),
            emb(BGE, 401, INVALID_KEY),
            S1_MISTRAL,
            chat(MISTRAL, 401, INVALID_KEY),
            ping(alive("S1")),
            close(closed("S1")),
        ),
    ),
    "A.8 key without a user": Setup(
        key="orphan",
        steps=(chat(MISTRAL, 401, UNKNOWN_USER), emb(BGE, 401, UNKNOWN_USER), stream(MISTRAL, 401, UNKNOWN_USER)),
    ),
    "A.10 model resolution": Setup(
        steps=(
            chat(None),
            ping(alive("S1")),
            chat(""),
            chat("no-such-model"),
            chat(MISTRAL),
            ping(alive("S1")),
            chat(BGE),
            ping(alive("S2")),
            emb(BGE),
            ping(alive("S2")),
        )
    ),
    "B.14 embeddings after chat, and back": Setup(
        steps=(
            chat(MISTRAL),
            ping(alive("S1")),
            emb(BGE),
            ping(alive("S2")),
            chat(MISTRAL),
            ping(alive("S3")),
            emb(None),
            ping(alive("S4")),
            emb(BGE),
            ping(alive("S4")),
        )
    ),
    "B.15 empty and null session_id, empty messages": Setup(
        steps=(
            chat(MISTRAL, session_id=""),
            ping(alive("S1")),
            chat(MISTRAL, session_id=None),
            ping(alive("S1")),
            close(closed("S1")),
            Step("chat", {"model": MISTRAL, "messages": []}, body=COMPLETION),
            ping(alive("S2")),
        )
    ),
    "B.17 chat then modelsession on the same model": Setup(
        steps=(chat(QWEN), ping(alive("S1")), model(QWEN, body=created("S1", QWEN)), ping(alive("S1")))
    ),
}


# B.11-B.13: single requests, the exact answers.
def _error(kind: str, loc: list[Any], msg: str, given: Any, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "loc": ["body", *loc], "msg": msg, "input": given, **extra}


NOT_A_STRING = "Input should be a valid string"
BAD_JSON = (
    b'{"messages": [',
    {"detail": [_error("json_invalid", [14], "JSON decode error", {}, ctx={"error": "Expecting value"})]},
)
EMBEDDINGS_422 = (
    ({"model": BGE}, {"detail": [_error("missing", ["input"], "Field required", {"model": BGE})]}),
    (
        {"input": [1, 2]},
        {
            "detail": [
                _error("string_type", ["input", "str"], NOT_A_STRING, [1, 2]),
                _error("string_type", ["input", "list[str]", 0], NOT_A_STRING, 1),
                _error("string_type", ["input", "list[str]", 1], NOT_A_STRING, 2),
            ]
        },
    ),
)
