"""Everything one running mock holds, built once from its Config."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mockserver.config import Config
from mockserver.domain import (
    ApiKey,
    Automation,
    AutomationSettings,
    BidTable,
    Clock,
    Counter,
    DomainError,
    FakeClock,
    Fault,
    FaultPlan,
    GatewayDependencies,
    IdSource,
    InMemoryStore,
    Journal,
    JournalLog,
    KeyRegistry,
    LocalCounter,
    LocalSlots,
    ModelTable,
    NoPause,
    OffsetClock,
    QueuedReply,
    ReplyQueue,
    SessionBook,
    SessionStore,
    SimulatedDependencies,
    SimulatedUpstream,
    Sleeper,
    Slots,
    Upstream,
    WallSleeper,
)
from mockserver.redis_shared import (
    AutomationCodec,
    FaultsCodec,
    KeysCodec,
    RedisCounter,
    RedisJournal,
    RedisSlots,
    RepliesCodec,
)
from mockserver.redis_store import RedisClock, RedisStore, RedisView, StoreUnavailable, connect
from mockserver.web.errors import WebError
from mockserver.web.selfcheck import ResponseChecks
from mockserver.web.validation_models import OperationModels, request_models
from openapi import Spec, Validators, load_spec


class ControllableClock(Clock, Protocol):
    def set(self, t: float) -> float: ...

    def advance(self, seconds: float) -> float: ...


class View(Protocol):
    """How a worker sees the shared state: `fresh(key)` wraps one request for a key (see `RedisView`)."""

    reads_ahead: bool  # whether `fresh` wants the request's key

    def fresh(self, key: str | None = None) -> AbstractContextManager[None]: ...


class LocalView:
    """This process's own state is always fresh: a request needs no look at anything first."""

    reads_ahead = False

    def fresh(self, key: str | None = None) -> AbstractContextManager[None]:
        return contextlib.nullcontext()


@dataclass
class Scenario:
    """Where a recording mock files requests without a scenario header (`PUT /__admin/recording/scenario`)."""

    name: str | None = None


@dataclass(frozen=True)
class MockState:
    """The mock's world: keys, sessions, tables, faults, clock, ids, journal and the contract."""

    config: Config
    spec: Spec
    validators: Validators
    responses: ResponseChecks  # the self-check, its response schemas compiled once
    requests: Mapping[str, OperationModels]  # request validation, built from `spec` at start-up
    clock: Clock
    ids: IdSource
    keys: KeyRegistry
    book: SessionBook
    models: ModelTable
    bids: BidTable
    faults: FaultPlan
    journal: JournalLog
    automation: AutomationSettings
    replies: ReplyQueue
    dependencies: GatewayDependencies  # the auth backend, key rows, models source, signing key (their faults)
    upstream: Upstream  # the proxy-router: the book calls its session steps, chat and embeddings the rest
    sleeper: Sleeper  # the gateway's pauses between its attempts at the proxy-router
    view: View
    scenario: Scenario = field(default_factory=Scenario)


@dataclass(frozen=True)
class Shared:
    """What every worker of one mock must agree on: in this process, or in the store (`--store`)."""

    store: SessionStore
    clock: Clock
    counter: Counter
    faults: Slots[tuple[Fault, ...]]
    keys: Slots[tuple[ApiKey, ...]]
    journal: JournalLog
    automation: Slots[Automation]
    replies: Slots[tuple[QueuedReply, ...]]
    view: View


def build_state(
    config: Config, *, clock: Clock | None = None, spec: Spec | None = None, sleeper: Sleeper | None = None
) -> MockState:
    spec = spec or load_spec()
    shared = shared_state(config)
    clock = clock or shared.clock
    sleeper = sleeper or default_sleeper(config, clock)
    ids = IdSource(config.seed, counter=shared.counter)
    validators = Validators(spec)
    faults = FaultPlan(shared.faults, clock)
    replies = ReplyQueue(shared.replies)
    bids = BidTable.from_file(config.bids_file) if config.bids_file else BidTable()
    upstream = SimulatedUpstream(config.seed, clock, faults, replies, bids, shared.store)
    automation = AutomationSettings(config.automation, shared.automation)
    book = SessionBook(
        shared.store,
        clock,
        ids,
        upstream,
        min_duration=config.min_session_duration,
        bid_open_seconds=config.chain_latency,
        automation=automation,  # a modelsession's sessionDuration of 0 reads it
    )
    return MockState(
        config=config,
        spec=spec,
        validators=validators,
        responses=ResponseChecks(spec, validators),
        requests=request_models(spec),
        clock=clock,
        ids=ids,
        keys=load_keys(config, shared.keys),
        book=book,
        models=ModelTable.from_file(config.models_file) if config.models_file else ModelTable.builtin(),
        bids=bids,
        faults=faults,
        journal=shared.journal,
        automation=automation,
        replies=replies,
        dependencies=SimulatedDependencies(faults),
        upstream=upstream,
        sleeper=sleeper,
        view=shared.view,
    )


def default_sleeper(config: Config, clock: Clock) -> Sleeper:
    """No pause with `--no-retry-pause`; else a FakeClock's (the pause passes on it at once) or a real one."""
    if not config.retry_pause:
        return NoPause()
    return clock if isinstance(clock, FakeClock) else WallSleeper()


def shared_state(config: Config) -> Shared:
    """This process's memory (the default), or Redis (`--store`): sessions, clock, ids, faults, keys, journal."""
    if config.store is None:
        return Shared(
            InMemoryStore(history_limit=config.history_size),
            OffsetClock(),
            LocalCounter(),
            LocalSlots(),
            LocalSlots(),
            Journal(config.journal_size),
            LocalSlots(),
            LocalSlots(),
            LocalView(),
        )
    try:
        client = connect(config.store)
    except StoreUnavailable as error:
        raise WebError(str(error)) from None
    view = RedisView(client)  # one per worker: the faults, the keys, the clock offset it has read; records ahead
    return Shared(
        RedisStore(client, history_limit=config.history_size, view=view),
        RedisClock(client, view=view),
        RedisCounter(client),
        RedisSlots(client, "faults", FaultsCodec(), view=view),
        RedisSlots(client, "keys", KeysCodec(), view=view),
        RedisJournal(client, config.journal_size, wire=view.wire),
        RedisSlots(client, "automation", AutomationCodec(), view=view),
        RedisSlots(client, "replies", RepliesCodec(), view=view),
        view,
    )


def load_keys(config: Config, slots: Slots[tuple[ApiKey, ...]] | None = None) -> KeyRegistry:
    """The key registry from `--key` flags and the keys file, its entries kept in `slots`."""
    registry = KeyRegistry(
        keys=config.keys, accept_any=config.accept_any_key, revoked_keys_work=config.revoked_keys_work, slots=slots
    )
    if config.keys_file is not None:
        read_keys_file(config.keys_file, registry)
    return registry


def read_keys_file(path: Path, registry: KeyRegistry) -> None:
    """Lines: `<full key>`, `legacy <prefix>`, `revoked <full key>` or `orphan <full key>` (a key with
    no user: 401 "API key not associated with a valid user"); `#` starts a comment."""
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
    elif len(words) == 2 and words[0] == "orphan":
        registry.add(words[1], orphan=True)
    else:
        raise ValueError("expected KEY, 'legacy PREFIX', 'revoked KEY' or 'orphan KEY'")
