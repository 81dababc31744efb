"""The storage assembly: one `Shared` bundle from `Config.store`, in this process or in Redis.

This is the one module that imports `mockserver.store.redis`, and only when the config names a Redis
URL: the in-memory mock never imports redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from mockserver.config import Config
from mockserver.domain import (
    AdjustableClock,
    ApiKey,
    Automation,
    Counter,
    Fault,
    InMemoryStore,
    Journal,
    JournalLog,
    LocalCounter,
    LocalSlots,
    OffsetClock,
    QueuedReply,
    SessionStore,
    Slots,
)
from mockserver.store.view import LocalView, View


@dataclass(frozen=True)
class Shared:
    """What every worker of one mock must agree on: in this process, or in the store (`--store`)."""

    store: SessionStore
    clock: AdjustableClock
    counter: Counter
    faults: Slots[tuple[Fault, ...]]
    keys: Slots[tuple[ApiKey, ...]]
    journal: JournalLog
    automation: Slots[Automation]
    replies: Slots[tuple[QueuedReply, ...]]
    view: View


def shared_state(config: Config) -> Shared:
    """This process's memory (the default), or Redis (`--store`): sessions, clock, ids, faults, keys, journal.

    Raises:
        StoreUnavailable: the Redis store named cannot be reached.
    """
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
    return in_redis(config.store, history_size=config.history_size, journal_size=config.journal_size)


def in_redis(url: str, *, history_size: int, journal_size: int) -> Shared:
    """Every piece in the Redis store at `url`, read by one `RedisView` per worker."""
    from mockserver.store.redis.clock import RedisClock
    from mockserver.store.redis.codecs import AutomationCodec, FaultsCodec, KeysCodec, RepliesCodec
    from mockserver.store.redis.journal import RedisJournal
    from mockserver.store.redis.slots import RedisCounter, RedisSlots
    from mockserver.store.redis.store import RedisStore
    from mockserver.store.redis.view import RedisView
    from mockserver.store.redis.wire import connect

    wire = connect(url)
    view = RedisView(wire)  # one per worker: its snapshot of the admin state; the request's record read ahead
    return Shared(
        RedisStore(wire, history_limit=history_size, view=view),
        RedisClock(wire, view=view),
        RedisCounter(wire),
        RedisSlots(wire, "faults", FaultsCodec(), view=view),
        RedisSlots(wire, "keys", KeysCodec(), view=view),
        RedisJournal(wire, journal_size),
        RedisSlots(wire, "automation", AutomationCodec(), view=view),
        RedisSlots(wire, "replies", RepliesCodec(), view=view),
        view,
    )
