"""Everything one running mock holds, built once from its Config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mockserver.config import Config
from mockserver.domain import (
    AdjustableClock,
    ApiKey,
    AutomationSettings,
    BidTable,
    Clock,
    DomainError,
    FakeClock,
    FaultPlan,
    GatewayDependencies,
    IdSource,
    JournalLog,
    KeyRegistry,
    ModelTable,
    NoPause,
    ReplyQueue,
    SessionBook,
    SimulatedDependencies,
    SimulatedUpstream,
    Sleeper,
    Slots,
    Upstream,
    WallSleeper,
)
from mockserver.store import StoreUnavailable, View
from mockserver.store.assembly import shared_state
from mockserver.web.errors import WebError
from mockserver.web.selfcheck import ResponseChecks
from mockserver.web.validation_models import OperationModels, request_models
from openapi import Spec, Validators, load_spec


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
    clock: AdjustableClock
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


def build_state(
    config: Config, *, clock: AdjustableClock | None = None, spec: Spec | None = None, sleeper: Sleeper | None = None
) -> MockState:
    spec = spec or load_spec()
    try:
        shared = shared_state(config)
    except StoreUnavailable as error:
        raise WebError(str(error)) from None
    clock = clock or shared.clock
    sleeper = sleeper or default_sleeper(config, clock)
    ids = IdSource(config.seed, counter=shared.counter)
    validators = Validators(spec)
    faults = FaultPlan(shared.faults, clock)
    replies = ReplyQueue(shared.replies)
    bids = BidTable.from_file(config.bids_file) if config.bids_file else BidTable()
    upstream = SimulatedUpstream(config.seed, clock, faults, replies, bids)
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
        registry.register(words[0])
    elif len(words) == 2 and words[0] == "legacy":
        registry.register_legacy(words[1])
    elif len(words) == 2 and words[0] == "revoked":
        registry.register(words[1], revoked=True)  # the full key: only this key, not every key under its prefix
    elif len(words) == 2 and words[0] == "orphan":
        registry.register(words[1], orphan=True)
    else:
        raise ValueError("expected KEY, 'legacy PREFIX', 'revoked KEY' or 'orphan KEY'")
