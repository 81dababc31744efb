"""The suite's vocabulary, read from the spec through `openapi/`: the operations it sends (by operationId,
each with its method and path) and the session rules (`x-session-rules`). Nothing else in `contracts/`
spells a path, an operation id or a rule id list."""

from __future__ import annotations

from openapi import ADMIN_SPEC_PATH, EVENT_STREAM, Operation, load_spec

SPEC = load_spec()
MODEL_SESSION: Operation = SPEC.operation("create_model_session_api_v1_session_modelsession_post")
BID_SESSION: Operation = SPEC.operation("create_bid_session_api_v1_session_bidsession_post")
PING: Operation = SPEC.operation("ping_session_api_v1_session_pingsession_post")
CLOSE: Operation = SPEC.operation("close_session_api_v1_session_closesession_post")
APPROVE: Operation = SPEC.operation("approve_spending_api_v1_session_approve_post")
LIST_MODELS: Operation = SPEC.operation("list_models_api_v1_models_get")
CREATES = (MODEL_SESSION, BID_SESSION)
SESSION_OPERATIONS = (MODEL_SESSION, BID_SESSION, PING, CLOSE)
RULES = tuple(rule.id for rule in SPEC.session_rules)
# Chat completions and embeddings (they cost tokens: sent against a URL only with --allow-chat).
CHAT: Operation = SPEC.operation("create_chat_completion_api_v1_chat_completions_post")
EMBEDDINGS: Operation = SPEC.operation("create_embeddings_api_v1_embeddings_post")
CHAT_OPERATIONS = (CHAT, EMBEDDINGS)
# The rules only chat can check: named by the chat operations and by no session route.
CHAT_RULES = tuple(
    rule
    for rule in RULES
    if rule in CHAT.session_rules and not any(rule in op.session_rules for op in (*SESSION_OPERATIONS, APPROVE))
)
STREAM_MEDIA_TYPE = EVENT_STREAM
# The mock's control API (openapi/admin.yaml): time and faults, where the target has them.
ADMIN = load_spec(ADMIN_SPEC_PATH)
CLOCK: Operation = ADMIN.operation("get_clock")
ADVANCE_CLOCK: Operation = ADMIN.operation("advance_clock")
FAULTS: Operation = ADMIN.operation("arm_fault")
KEY_STATE: Operation = ADMIN.operation("reset_key_state")
AUTOMATION: Operation = ADMIN.operation("set_automation")  # a key's automation (C3), GET and PUT


def labels(*operations: Operation) -> tuple[str, ...]:
    """`POST /api/v1/session/pingsession`-style labels, as the summary counts operations."""
    return tuple(operation.label for operation in operations)
