"""How the domain's values are written to Redis and read back (JSON text); no Redis here.

What every request writes or reads (its key's record, a session it ended, its journal entry) goes through
`dumps` and `loads`: orjson, about a tenth of the json module's time, with the json module for what orjson
refuses (a lone surrogate, as JSON's "\\ud800" escape makes; an integer beyond 64 bits), so every value the
json module wrote is still written and read back the same.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Protocol, TypeVar

import orjson

from mockserver.domain import (
    ApiKey,
    Automation,
    Fault,
    FaultKind,
    JournalEntry,
    KeyRecord,
    QueuedReply,
    Session,
    SessionKind,
    ToolCallReply,
)
from mockserver.domain.faults import Broken
from mockserver.domain.store import EMPTY

V = TypeVar("V")


def dumps(value: Any) -> bytes:
    """`value` as JSON text (UTF-8)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()


def loads(raw: bytes | str) -> Any:
    """The value JSON text `raw` holds."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


class Codec(Protocol[V]):
    """How a slot's value is written to Redis and read back."""

    def dumps(self, value: V) -> str: ...

    def loads(self, raw: bytes | str) -> V: ...


def _fields(s: Session) -> list[Any]:
    """A session as the list of its fields in their order (every request writes or reads a record: no
    names, no `asdict`)."""
    return [
        s.session_id,
        s.key,
        str(s.kind),
        s.model,
        s.requested,
        s.created_at,
        s.expires_at,
        s.closed_at,
        s.close_reason,
    ]


def _from_fields(fields: list[Any]) -> Session:
    session_id, key, kind, model, requested, created_at, expires_at, closed_at, close_reason = fields
    return Session(
        session_id, key, SessionKind(kind), model, requested, created_at, expires_at, closed_at, close_reason
    )


def encode_ended(session: Session, at: float) -> bytes:
    """A history entry: the wall time the session ended at (to merge keys' lists by) and the session."""
    return dumps([at, _fields(session)])


def decode_ended(raw: bytes | str) -> tuple[float, Session]:
    at, fields = loads(raw)
    return float(at), _from_fields(fields)


RECORDS_KEPT = 4096  # records known by their text (`decode_record`), all forgotten when full
_RECORDS: dict[bytes | str, KeyRecord] = {}


def encode_record(record: KeyRecord) -> bytes:
    """The record's text, known from now on (as Redis will answer it), so that reading back what this worker wrote
    (the next transaction of the key, a request's look) decodes nothing."""
    active = None if record.active is None else _fields(record.active)
    text = dumps(
        {"active": active, "chain": [_fields(session) for session in record.chain], "synced_at": record.synced_at}
    )
    _know(text, record)
    return text


def decode_record(raw: bytes | str | None) -> KeyRecord:
    """The record `raw` holds; a text known already (this worker encoded it, or decoded it before: a hot key's
    unchanged record) is not decoded again: a `KeyRecord` is frozen, so the one known serves every reader."""
    if raw is None:
        return EMPTY
    record = _RECORDS.get(raw)
    if record is None:
        fields = loads(raw)
        active = None if fields["active"] is None else _from_fields(fields["active"])
        record = KeyRecord(active, tuple(_from_fields(s) for s in fields["chain"]), fields["synced_at"])
        _know(raw, record)
    return record


def _know(raw: bytes | str, record: KeyRecord) -> None:
    if len(_RECORDS) >= RECORDS_KEPT:
        _RECORDS.clear()
    _RECORDS[raw] = record


class FaultsCodec:
    """Armed faults as a JSON list of their fields."""

    def dumps(self, value: tuple[Fault, ...]) -> str:
        return json.dumps([{**asdict(fault), "kind": fault.kind.value} for fault in value])

    def loads(self, raw: bytes | str) -> tuple[Fault, ...]:
        return tuple(_fault(fields) for fields in json.loads(raw))


def _fault(fields: dict[str, Any]) -> Fault:
    broke = fields.get("broke")
    return Fault(**{**fields, "kind": FaultKind(fields["kind"]), "broke": None if broke is None else Broken(**broke)})


class KeysCodec:
    """A prefix's registered keys (prefix, hash of the full key, revoked) as a JSON list."""

    def dumps(self, value: tuple[ApiKey, ...]) -> str:
        return json.dumps([asdict(entry) for entry in value])

    def loads(self, raw: bytes | str) -> tuple[ApiKey, ...]:
        return tuple(ApiKey(**fields) for fields in json.loads(raw))


class AutomationCodec:
    """A key's automation setting as a JSON object."""

    def dumps(self, value: Automation) -> str:
        return json.dumps(asdict(value))

    def loads(self, raw: bytes | str) -> Automation:
        return Automation(**json.loads(raw))


class RepliesCodec:
    """The provider's reply queue as a JSON list of the replies' fields."""

    def dumps(self, value: tuple[QueuedReply, ...]) -> str:
        return json.dumps([asdict(reply) for reply in value])

    def loads(self, raw: bytes | str) -> tuple[QueuedReply, ...]:
        return tuple(_reply(fields) for fields in json.loads(raw))


def _reply(fields: dict[str, Any]) -> QueuedReply:
    return QueuedReply(**{**fields, "tool_calls": tuple(ToolCallReply(**call) for call in fields["tool_calls"])})


def journal_entry(raw: bytes | str) -> JournalEntry:
    """An entry as written (a JSON list), its upstream statuses a tuple again (none in an older entry)."""
    entry = JournalEntry(*loads(raw))
    return entry._replace(upstream=tuple(entry.upstream))
