"""The model table (name <-> blockchain id, with the default-model fallback) and the bid table."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mockserver.domain.errors import InvalidTable
from mockserver.domain.sessions import SessionKind
from mockserver.domain.tables import as_object, get, read_json, strings
from mockserver.domain.upstream import BID_NOT_FOUND, upstream_failure

BLOCKCHAIN_ID = re.compile(r"0x[0-9a-f]{64}")
DEFAULT_MODEL = "mistral-31-24b"


@dataclass(frozen=True)
class Model:
    """One item of the gateway's `/api/v1/models` list."""

    name: str
    blockchain_id: str
    created: int
    tags: tuple[str, ...]
    model_type: str

    def __post_init__(self) -> None:
        if BLOCKCHAIN_ID.fullmatch(self.blockchain_id) is None:
            raise InvalidTable(
                f"model {self.name!r}: blockchain id must be '0x' + 64 lowercase hex characters, "
                f"got {self.blockchain_id!r}"
            )

    def to_json(self) -> dict[str, object]:
        """The item as the gateway lists it (and as `ModelTable.from_file` reads it)."""
        return {
            "id": self.name,
            "blockchainID": self.blockchain_id,
            "created": self.created,
            "tags": list(self.tags),
            "modelType": self.model_type,
        }


_BUILTIN = (
    Model(
        DEFAULT_MODEL,
        "0x8e5c0a7b3f9d2e1c6a4b8f0d3e7c9a1b5f2d6e0c4a8b3f7d1e9c5a2b6f0d4e8c",
        1741219200,
        ("LLM", "default"),
        "LLM",
    ),
    Model(
        "llama-3.3-70b",
        "0x2f6d1e9c5a2b6f0d4e8c8e5c0a7b3f9d2e1c6a4b8f0d3e7c9a1b5f2d6e0c4a8b",
        1741305600,
        ("LLM",),
        "LLM",
    ),
    Model(
        "qwen3-235b",
        "0x5a2b6f0d4e8c8e5c0a7b3f9d2e1c6a4b8f0d3e7c9a1b5f2d6e0c4a8b2f6d1e9c",
        1746057600,
        ("LLM", "reasoning"),
        "LLM",
    ),
    Model(
        "text-embedding-bge-m3",
        "0xc4a8b3f7d1e9c5a2b6f0d4e8c8e5c0a7b3f9d2e1c6a4b8f0d3e7c9a1b5f2d6e0",
        1743465600,
        ("Embeddings",),
        "EMBEDDINGS",
    ),
)


TYPE_DEFAULTS = {"LLM": DEFAULT_MODEL, "EMBEDDINGS": "text-embedding-bge-m3"}
"""The gateway's default model name per type (DEFAULT_FALLBACK_MODEL, DEFAULT_FALLBACK_EMBEDDINGS_MODEL)."""


class ModelTable:
    """Resolves a `model_id` query value the way the gateway's model router does (section 3.1)."""

    def __init__(self, models: Sequence[Model], default: str) -> None:
        self._models = tuple(models)
        _check_unique("name", [m.name for m in self._models])
        _check_unique("blockchain id", [m.blockchain_id for m in self._models])
        self._by_id = {m.blockchain_id: m for m in self._models}
        self._by_name = {m.name: m for m in self._models}
        if default not in self._by_name:
            known = ", ".join(repr(name) for name in self._by_name) or "none"
            raise InvalidTable(f"default model {default!r} is not in the table (models: {known})")
        self.default = self._by_name[default]

    def __repr__(self) -> str:
        return f"ModelTable({len(self._models)} models, default={self.default.name!r})"

    @classmethod
    def builtin(cls) -> ModelTable:
        """A small table whose default is the gateway's fallback model, "mistral-31-24b"."""
        return cls(_BUILTIN, DEFAULT_MODEL)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ModelTable:
        """Read `{"default": name, "models": [{"id", "blockchainID", "created", "tags", "modelType"}]}`."""
        try:
            data = read_json(path)
            items: list[object] = get(data, "models", list, "$")
            models = [_model(as_object(item, f"$.models[{i}]"), f"$.models[{i}]") for i, item in enumerate(items)]
            return cls(models, get(data, "default", str, "$"))
        except InvalidTable as exc:
            raise InvalidTable(f"model table {os.fspath(path)}: {exc}") from exc

    def resolve(self, model_id: str) -> str:
        """The blockchain id for an id or a name; anything else (even "") gives the default's id."""
        model = self._by_id.get(model_id) or self._by_name.get(model_id) or self.default
        return model.blockchain_id

    def models(self) -> tuple[Model, ...]:
        return self._models

    def model_for(self, model_id: str | None, model_type: str) -> Model:
        """The model chat (`LLM`) or embeddings (`EMBEDDINGS`) resolve `model` to: by id, by name (the type is
        not checked), else the type's default (chat-completions.md section 4)."""
        found = self._by_id.get(model_id or "") or self._by_name.get(model_id or "")
        return found or self._default_of(model_type)

    def _default_of(self, model_type: str) -> Model:
        """The type's default name when the table has it, else the table's default (never an error)."""
        return self._by_name.get(TYPE_DEFAULTS.get(model_type, "")) or self.default


def _model(item: dict[str, object], where: str) -> Model:
    return Model(
        name=get(item, "id", str, where),
        blockchain_id=get(item, "blockchainID", str, where),
        created=get(item, "created", int, where, default=0),
        tags=strings(item, "tags", where),
        model_type=get(item, "modelType", str, where, default="LLM"),
    )


def _check_unique(what: str, values: list[str]) -> None:
    twice = sorted(value for value, count in Counter(values).items() if count > 1)
    if twice:
        raise InvalidTable(f"duplicate model {what}: {', '.join(map(repr, twice))}")


class BidTable:
    """Known bid ids; the gateway checks no format, and only a strict table rejects unknown bids."""

    def __init__(self, known: Iterable[str] = (), strict: bool = False) -> None:
        self.known = frozenset(known)
        self.strict = strict

    def __repr__(self) -> str:
        return f"BidTable({len(self.known)} bids, strict={self.strict!r})"

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> BidTable:
        """Read `{"strict": bool, "bids": ["0x...", ...]}`."""
        try:
            data = read_json(path)
            return cls(strings(data, "bids", "$"), get(data, "strict", bool, "$", default=False))
        except InvalidTable as exc:
            raise InvalidTable(f"bid table {os.fspath(path)}: {exc}") from exc

    def failure(self, bid_id: str) -> str | None:
        """The upstream error for this bid (what `SimulatedUpstream.open_session` answers for it), if any."""
        return BID_NOT_FOUND if self.strict and bid_id not in self.known else None

    def check(self, bid_id: str) -> None:
        """Raise the gateway's bid-session failure when the table is strict and the bid unknown."""
        reason = self.failure(bid_id)
        if reason is not None:
            raise upstream_failure(SessionKind.BID, 500, reason)

    def bids(self) -> tuple[str, ...]:
        return tuple(sorted(self.known))
