"""The simulated upstream: the proxy-router, the chain's session calls and the provider behind chat.

`Upstream` is the one interface for the gateway's six upstream calls: the session book calls open,
verify, close and ping (the ping's test chat) at the steps the gateway makes them; the chat and
embeddings handlers call complete and embed with a resolved session. `SimulatedUpstream` implements
it from the fault plan (proxy-router failures, taken when the step is reached), the bid table, the
reply queue (what the provider is told to answer) and the mock's seed (what it answers otherwise,
deterministically).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from mockserver.domain.approval import ApproveOutcome, approve
from mockserver.domain.catalogue import OPENING, STEPS, Step, chat_error, create_error
from mockserver.domain.clock import Clock
from mockserver.domain.errors import DomainError, InvalidFault, UpstreamFailed
from mockserver.domain.faults import FIRST_TRY, Attempt, FaultKind, FaultPlan
from mockserver.domain.ids import IdSource
from mockserver.domain.models import BidTable
from mockserver.domain.sessions import SessionKind
from mockserver.domain.shared import LocalSlots, Slots
from mockserver.domain.upstream import error_body, upstream_failure

BROKEN_STREAM = "peer closed connection without sending complete message body (incomplete chunked read)"
PROVIDER_ERROR = '{"error":"provider error"}'
_SENTENCE = (
    "the mock gateway answers every prompt with a short reproducible sentence so that tests can "
    "compare whole replies seeded by the session and the conversation"
)
_WORDS = tuple(_SENTENCE.split(" "))
_QUEUE = "queue"
EMBEDDING_SIZE = 8


@dataclass(frozen=True)
class ToolCallReply:
    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class QueuedReply:
    """What the provider answers to one chat completion (the admin API's ReplyRequest)."""

    key: str | None = None
    content: str | None = None
    tool_calls: tuple[ToolCallReply, ...] = ()
    finish_reason: str | None = None
    error_status: int | None = None
    error_body: str | None = None
    break_after: int | None = None
    chunk_delay: float = 0.0
    raw_body: str | None = None  # a 200 whose body is this text, verbatim ("" empty): unusable unless truthy JSON

    def __post_init__(self) -> None:
        if self.error_status is not None and not 400 <= self.error_status <= 599:
            raise InvalidFault(f"error status must be 400-599, got {self.error_status}")
        if self.break_after is not None and self.break_after < 0:
            raise InvalidFault(f"break_after must be 0 or more, got {self.break_after}")
        if not 0 <= self.chunk_delay <= 10:
            raise InvalidFault(f"chunk_delay must be 0-10 seconds, got {self.chunk_delay}")

    def to_json(self) -> dict[str, object]:
        error = None if self.error_status is None else {"status": self.error_status, "body": self.error_body}
        return {
            "key": self.key,
            "content": self.content,
            "tool_calls": [asdict(call) for call in self.tool_calls],
            "finish_reason": self.finish_reason,
            "error": error,
            "break_after": self.break_after,
            "chunk_delay": self.chunk_delay,
            "raw_body": self.raw_body,
        }


class ReplyQueue:
    """Queued provider replies, first in first out, each for one key or any (shared like faults)."""

    def __init__(self, slots: Slots[tuple[QueuedReply, ...]] | None = None) -> None:
        self._slots: Slots[tuple[QueuedReply, ...]] = LocalSlots() if slots is None else slots

    async def push(self, reply: QueuedReply) -> QueuedReply:
        return await self._slots.update(_QUEUE, lambda queued: ((*(queued or ()), reply), reply))

    async def take(self, key: str) -> QueuedReply | None:
        if not self._slots.get(_QUEUE):
            return None  # nothing queued, the usual case: a read, no change

        def change(queued: tuple[QueuedReply, ...] | None) -> tuple[tuple[QueuedReply, ...] | None, QueuedReply | None]:
            queued = queued or ()
            for index, reply in enumerate(queued):
                if reply.key in (None, key):
                    return (*queued[:index], *queued[index + 1 :]) or None, reply
            return queued or None, None

        return await self._slots.update(_QUEUE, change)

    def listed(self) -> tuple[QueuedReply, ...]:
        return self._slots.get(_QUEUE) or ()

    async def clear(self, key: str | None = None) -> int:
        def change(queued: tuple[QueuedReply, ...] | None) -> tuple[tuple[QueuedReply, ...] | None, int]:
            kept = tuple(r for r in queued or () if key is not None and r.key != key)
            return kept or None, len(queued or ()) - len(kept)

        return await self._slots.update(_QUEUE, change)


@dataclass(frozen=True)
class Prompt:
    """A chat completion as it reaches the provider (without `model`: the session picks it)."""

    key: str
    session_id: str
    model: str  # the session's model name, which the provider reports
    messages: Sequence[Mapping[str, Any]]
    chain_error: str | None  # what the chain says of the session (`SessionBook.chain_error`): None while open
    attempt: Attempt = FIRST_TRY


@dataclass(frozen=True)
class Completion:
    """The provider's answer: the non-stream body, the stream's chunks, and how the stream runs."""

    body: dict[str, Any]
    chunks: tuple[dict[str, Any], ...]
    chunk_delay: float = 0.0
    break_after: int | None = None
    usage: dict[str, int] = field(default_factory=dict)
    raw: str | None = None  # a 200 body sent verbatim instead of `body` / `chunks` (a queued `raw_body`)


@dataclass(frozen=True)
class Opening:
    """A session the gateway asks the proxy-router to open: on a model or on a bid, as the client sent it."""

    kind: SessionKind
    requested: str  # the model id or the bid id as sent
    duration: int  # as sent: 0 stands for the automation default


class Upstream(Protocol):
    """The proxy-router, as each of the gateway's steps calls it: the one seam for its failures.

    The session book calls the session steps inside a key's transaction, at the step where the
    gateway makes the call (see `SessionBook`); chat completions and embeddings call `complete` and
    `embed` with the resolved session. The session steps answer only what the proxy-router (and the
    gateway's own failures around the call) says; whether a session is open on chain is the book's.
    """

    async def open_session(self, key: str, opening: Opening, attempt: Attempt) -> DomainError | None:
        """Open a session (modelsession, bidsession, a chat that needs one): None, or the error the
        gateway reports for the first step of its opening that fails."""
        ...

    async def verify_session(self, key: str, session_id: str, attempt: Attempt) -> bool:
        """modelsession's check that a session open on chain is valid in the proxy-router."""
        ...

    async def close_session(self, key: str, session_id: str, attempt: Attempt) -> bool:
        """Close a session on chain (closesession, a model switch, a dead ping): whether it worked."""
        ...

    async def ping_session(self, key: str, session_id: str, attempt: Attempt) -> str | None:
        """pingsession's test chat on a session open on chain: None when it answers, else the error text."""
        ...

    async def ping_error(self, key: str, attempt: Attempt) -> str | None:
        """pingsession's own unexpected error (the route's `except Exception`), asked before anything else."""
        ...

    async def close_error(self, key: str, attempt: Attempt) -> str | None:
        """closesession's own unexpected error (the route's `except Exception`), asked before anything else."""
        ...

    async def approve_spending(self, key: str, ids: IdSource, attempt: Attempt) -> ApproveOutcome:
        """approve's call: a new transaction hash from `ids`, or the proxy-router's error."""
        ...

    async def complete(self, prompt: Prompt) -> Completion:
        """A chat completion; raises `UpstreamFailed` (an error status and its raw body) or `UpstreamUnreachable`."""
        ...

    async def embed(
        self, prompt: Prompt, inputs: Sequence[str], encoding: str | None, dimensions: int | None
    ) -> dict[str, Any]:
        """Embeddings; raises as `complete` does."""
        ...


class SimulatedUpstream:
    """The proxy-router and a provider that answer deterministically, unless the fault plan says otherwise.

    Every armed fault is taken from `faults` at the moment the gateway's step calls the proxy-router
    (with the client's `attempt`, so faults that cover retries see them); `bids` is the bid table a
    strict mock checks bid sessions against. What the chain says of the session a chat names comes in
    the `Prompt` (the book's answer): the upstream reads no session state of its own.
    """

    def __init__(
        self,
        seed: int | None,
        clock: Clock,
        faults: FaultPlan,
        replies: ReplyQueue,
        bids: BidTable,
    ) -> None:
        self.seed = 0 if seed is None else seed
        self.clock = clock
        self.faults = faults
        self.replies = replies
        self.bids = bids

    async def complete(self, prompt: Prompt) -> Completion:
        await self._check(prompt)
        reply = (await self.replies.take(prompt.key)) or QueuedReply()
        if reply.error_status is not None:
            raise UpstreamFailed(reply.error_status, reply.error_body or PROVIDER_ERROR)
        if reply.raw_body is not None:
            return Completion({}, (), raw=reply.raw_body)
        digest = self._digest(prompt.session_id, json.dumps(list(prompt.messages), sort_keys=True, default=str))
        ident, created = f"chatcmpl-{digest[:24]}", int(self.clock.now())
        content = reply.content if reply.content is not None or reply.tool_calls else _sentence(digest)
        calls = [_tool_call(index, call, digest) for index, call in enumerate(reply.tool_calls)]
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        prompt_tokens = sum(_tokens(m.get("content")) for m in prompt.messages)
        completion_tokens = _tokens(content) + sum(_tokens(c["function"]["arguments"]) for c in calls)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        usage["total_tokens"] = prompt_tokens + completion_tokens
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        head = {"id": ident, "object": "chat.completion", "created": created, "model": prompt.model}
        body = {**head, "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
        chunk_head = {**head, "object": "chat.completion.chunk"}
        deltas = _deltas(content, calls)
        chunks = (
            *({**chunk_head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas),
            {**chunk_head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
        )
        return Completion(body, chunks, reply.chunk_delay, reply.break_after, usage)

    async def embed(
        self, prompt: Prompt, inputs: Sequence[str], encoding: str | None, dimensions: int | None
    ) -> dict[str, Any]:
        await self._check(prompt)
        size = dimensions if dimensions and 0 < dimensions <= 4096 else EMBEDDING_SIZE
        data = []
        for index, text in enumerate(inputs):
            vector = _vector(self._digest(prompt.model, text), size)
            embedding: list[float] | str = vector
            if encoding == "base64":
                embedding = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(_tokens(text) for text in inputs)
        return {
            "object": "list",
            "data": data,
            "model": prompt.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def _check(self, prompt: Prompt) -> None:
        """The proxy-router's own failures: armed faults first, then a session it does not serve."""
        fault = await self.faults.take_first(STEPS[Step.CHAT], prompt.key, attempt=prompt.attempt)
        if fault is not None:
            raise chat_error(fault)
        if prompt.chain_error is not None:
            raise UpstreamFailed(500, error_body(prompt.chain_error))

    def _digest(self, *parts: str) -> str:
        return hashlib.sha256("\x00".join((str(self.seed), *parts)).encode()).hexdigest()

    # The session routes' calls, which the session book makes inside its transaction.

    async def open_session(self, key: str, opening: Opening, attempt: Attempt) -> DomainError | None:
        """A strict bid table's unknown bid, then the first create step an armed fault breaks (the gateway's order)."""
        if opening.kind is SessionKind.BID:
            reason = self.bids.failure(opening.requested)
            if reason is not None:
                return upstream_failure(SessionKind.BID, 500, reason)
        # only a zero duration consults the automation setting
        skipped = () if opening.duration == 0 else (FaultKind.AUTOMATION_DISABLED,)
        steps = [kind for kind in STEPS[OPENING[opening.kind]] if kind not in skipped]
        fault = await self.faults.take_first(steps, key, attempt=attempt)
        return None if fault is None else create_error(fault, opening.kind, opening.requested)

    async def verify_session(self, key: str, session_id: str, attempt: Attempt) -> bool:
        return await self._armed(Step.VERIFY, key, attempt) is None

    async def close_session(self, key: str, session_id: str, attempt: Attempt) -> bool:
        return await self._armed(Step.CLOSE, key, attempt) is None

    async def close_error(self, key: str, attempt: Attempt) -> str | None:
        return await self._armed(Step.CLOSE_ROUTE, key, attempt)

    async def ping_session(self, key: str, session_id: str, attempt: Attempt) -> str | None:
        return await self._armed(Step.PING, key, attempt)

    async def ping_error(self, key: str, attempt: Attempt) -> str | None:
        return await self._armed(Step.PING_ROUTE, key, attempt)

    async def approve_spending(self, key: str, ids: IdSource, attempt: Attempt) -> ApproveOutcome:
        return await approve(ids, fault=await self.faults.take_first(STEPS[Step.APPROVE], key, attempt=attempt))

    async def _armed(self, step: Step, key: str, attempt: Attempt) -> str | None:
        """The text of the first fault armed at `step` (one use of it), or None."""
        fault = await self.faults.take_first(STEPS[step], key, attempt=attempt)
        return None if fault is None else fault.text


def _sentence(digest: str) -> str:
    start, length = int(digest[:4], 16) % len(_WORDS), 4 + int(digest[4:6], 16) % 6
    words = [_WORDS[(start + i) % len(_WORDS)] for i in range(length)]
    return " ".join(words).capitalize() + "."


def _tokens(content: object) -> int:
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(_tokens(part.get("text")) for part in content if isinstance(part, Mapping))
    return 0


def _tool_call(index: int, call: ToolCallReply, digest: str) -> dict[str, Any]:
    return {
        "id": f"call_{digest[index * 4 : index * 4 + 8]}{index}",
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _deltas(content: str | None, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stream's deltas: the role, then a word at a time (or one delta per tool call)."""
    if calls:
        first: dict[str, Any] = {"role": "assistant", "content": None}
        return [first] + [{"tool_calls": [{"index": i, **call}]} for i, call in enumerate(calls)]
    words = (content or "").split(" ")
    pieces = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
    return [{"role": "assistant", "content": pieces[0]}] + [{"content": piece} for piece in pieces[1:]]


def _vector(digest: str, size: int) -> list[float]:
    raw = [int(digest[(2 * i) % 60 : (2 * i) % 60 + 4], 16) / 65535 * 2 - 1 + i * 1e-6 for i in range(size)]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [round(x / norm, 6) for x in raw]
