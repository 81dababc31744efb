"""Everything one running mock holds, built once from its Config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mockserver.config import Config
from mockserver.domain import (
    BidTable,
    Clock,
    DomainError,
    FaultPlan,
    IdSource,
    InMemoryStore,
    KeyRegistry,
    ModelTable,
    OffsetClock,
    SessionBook,
    SessionStore,
)
from mockserver.redis_store import RedisClock, RedisStore, StoreUnavailable, connect
from mockserver.web.errors import WebError
from mockserver.web.journal import Journal
from mockserver.web.selfcheck import ResponseChecks
from openapi import Spec, Validators, load_spec


class ControllableClock(Clock, Protocol):
    def set(self, t: float) -> float: ...

    def advance(self, seconds: float) -> float: ...


@dataclass(frozen=True)
class MockState:
    """The mock's world: keys, sessions, tables, faults, clock, ids, journal and the contract."""

    config: Config
    spec: Spec
    validators: Validators
    responses: ResponseChecks  # the self-check, its response schemas compiled once
    clock: Clock
    ids: IdSource
    keys: KeyRegistry
    book: SessionBook
    models: ModelTable
    bids: BidTable
    faults: FaultPlan
    journal: Journal


def build_state(config: Config, *, clock: Clock | None = None, spec: Spec | None = None) -> MockState:
    spec = spec or load_spec()
    store, shared_clock = session_store(config)
    clock = clock or shared_clock
    ids = IdSource(config.seed)
    validators = Validators(spec)
    return MockState(
        config=config,
        spec=spec,
        validators=validators,
        responses=ResponseChecks(spec, validators),
        clock=clock,
        ids=ids,
        keys=load_keys(config),
        book=SessionBook(store, clock, ids, min_duration=config.min_session_duration),
        models=ModelTable.from_file(config.models_file) if config.models_file else ModelTable.builtin(),
        bids=BidTable.from_file(config.bids_file) if config.bids_file else BidTable(),
        faults=FaultPlan(clock),
        journal=Journal(config.journal_size),
    )


def session_store(config: Config) -> tuple[SessionStore, Clock]:
    """Sessions in this process's memory (the default), or shared in Redis with the clock (`--store`)."""
    if config.store is None:
        return InMemoryStore(history_limit=config.history_size), OffsetClock()
    try:
        client = connect(config.store)
    except StoreUnavailable as error:
        raise WebError(str(error)) from None
    return RedisStore(client, history_limit=config.history_size), RedisClock(client)


def load_keys(config: Config) -> KeyRegistry:
    """The key registry from `--key` flags and the keys file."""
    registry = KeyRegistry(
        keys=config.keys, accept_any=config.accept_any_key, revoked_keys_work=config.revoked_keys_work
    )
    if config.keys_file is not None:
        read_keys_file(config.keys_file, registry)
    return registry


def read_keys_file(path: Path, registry: KeyRegistry) -> None:
    """Lines: `<full key>`, `legacy <prefix>` or `revoked <full key>`; `#` starts a comment."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise WebError(f"keys file {path}: {error.strerror}") from None
    for number, line in enumerate(lines, start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            _read_key_line(registry, words)
        except (DomainError, ValueError) as error:
            raise WebError(f"keys file {path}, line {number}: {error}") from None


def _read_key_line(registry: KeyRegistry, words: list[str]) -> None:
    if len(words) == 1:
        registry.add(words[0])
    elif len(words) == 2 and words[0] == "legacy":
        registry.add_legacy(words[1])
    elif len(words) == 2 and words[0] == "revoked":
        registry.add(words[1])
        registry.revoke(words[1])  # the full key: only this key, not every key under its prefix
    else:
        raise ValueError("expected KEY, 'legacy PREFIX' or 'revoked KEY'")
