"""Armed faults: what the mock should get wrong next, for which key, how often."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

from mockserver.domain.clock import Clock, SystemClock
from mockserver.domain.errors import InvalidFault
from mockserver.domain.shared import LocalSlots, Slots
from mockserver.domain.upstream import CHAT_FAILED


class FaultKind(Enum):
    CREATE_FAIL = "create_fail"  # modelsession/bidsession: the proxy-router answers `status` (500)
    VERIFY_FAIL = "verify_fail"  # modelsession: created but not valid in the proxy-router
    PING_DEAD = "ping_dead"  # pingsession: the test chat fails, the session is closed (R5)
    PING_ERROR = "ping_error"  # pingsession: an unexpected error (R5)
    CLOSE_FAIL = "close_fail"  # the upstream close fails: closesession (R4), a switch's or a dead ping's close
    APPROVE_ERROR = "approve_error"  # approve: the proxy-router answers `status` (500; HTTP 200 body)
    LATENCY = "latency"  # any operation (or one operationId) answers `seconds` later
    # The rest of the gateway's error catalogue (gateway-behaviour.md section 3), one kind per cause.
    AUTH_NO_USER = "auth_no_user"  # any keyed operation: 401, the key has no user
    AUTH_KEY_NOT_FOUND = "auth_key_not_found"  # any keyed operation: 400, the second key lookup fails
    AUTH_BACKEND = "auth_backend"  # any keyed operation: 500, the key check itself fails
    KEY_ROW_VANISHED = "key_row_vanished"  # modelsession: the key row vanished under the lock
    AUTOMATION_DISABLED = "automation_disabled"  # modelsession with sessionDuration 0: automation is off
    DEFAULT_MODEL_ERROR = "default_model_error"  # modelsession: the default model cannot be resolved
    NO_SIGNING_KEY = "no_signing_key"  # creates and approve: no private key and no fallback key
    BAD_BLOCKCHAIN_ID = "bad_blockchain_id"  # modelsession: the resolved id does not start with 0x
    MISSING_ENVIRONMENT = "missing_environment"  # bidsession: CHAIN_ID etc. not configured
    UPSTREAM_UNREACHABLE = "upstream_unreachable"  # creates and approve: the proxy-router cannot be reached
    NO_SESSION_ID = "no_session_id"  # creates: the proxy-router's answer has no session id
    CLOSE_ERROR = "close_error"  # closesession: any other exception
    MODELS_ERROR = "models_error"  # the models list cannot be fetched (arm it for every key: no key is sent)
    # Chat completions and embeddings: the proxy-router's answers to the call itself.
    CHAT_UPSTREAM_ERROR = "chat_upstream_error"  # it answers `status` (500) with `body`
    CHAT_UNREACHABLE = "chat_unreachable"  # it cannot be reached
    SESSION_EXPIRED = "session_expired"  # 500 {"error":"session expired"}


DEFAULT_MESSAGES = {
    FaultKind.CREATE_FAIL: "provider unavailable",
    FaultKind.PING_DEAD: CHAT_FAILED,
    FaultKind.PING_ERROR: "database is locked",
    FaultKind.APPROVE_ERROR: "insufficient funds for gas",
    FaultKind.AUTH_BACKEND: "connection refused",
    FaultKind.DEFAULT_MODEL_ERROR: "no active models",
    FaultKind.MISSING_ENVIRONMENT: "CHAIN_ID, DIAMOND_CONTRACT_ADDRESS",
    FaultKind.UPSTREAM_UNREACHABLE: "All connection attempts failed",
    FaultKind.CLOSE_ERROR: "connection refused",
    FaultKind.MODELS_ERROR: "connection refused",
}


@dataclass(frozen=True)
class Attempt:
    """One try of a client's call, as far as faults care: which operation, and whether it retries an earlier try.

    The Stainless and OpenAI SDKs number their tries (`x-stainless-retry-count`: 0, then 1, 2, ...) and
    may send one `Idempotency-Key` for every try of a call.
    """

    operation: str | None = None
    retry: bool = False
    idempotency_key: str | None = None


FIRST_TRY = Attempt()


@dataclass(frozen=True)
class Broken:
    """The call a fault that covers retries broke last: its key, operation and idempotency key."""

    key: str
    operation: str | None
    idempotency_key: str | None

    def retried_by(self, key: str, attempt: Attempt) -> bool:
        """Whether `attempt` is another try of this call: the same idempotency key, else a numbered retry."""
        if key != self.key:
            return False
        if attempt.idempotency_key is not None or self.idempotency_key is not None:
            return attempt.idempotency_key == self.idempotency_key
        return attempt.retry and attempt.operation == self.operation


@dataclass(frozen=True)
class Fault:
    """One armed fault; `key=None` targets every key, `remaining=None` lasts until cleared.

    `retries`: a use is one call of the client, its retries included (the SDKs retry a 5xx twice);
    `until`: the clock time at which the fault disarms itself (None: never).
    """

    kind: FaultKind
    key: str | None = None
    remaining: int | None = None
    message: str | None = None
    seconds: float = 0.0
    operation: str | None = None
    status: int | None = None  # the upstream's HTTP status (UPSTREAM_ANSWERS kinds; None: 500)
    body: str | None = None  # the upstream's raw body (None: `{"error": <message>}`)
    retries: bool = False
    until: float | None = None
    broke: Broken | None = None

    def matches(self, kind: FaultKind, key: str, operation: str | None) -> bool:
        return self.kind is kind and self.key in (None, key) and self.operation in (None, operation)

    def repeats_for(self, key: str, attempt: Attempt) -> bool:
        """Whether this fault breaks `attempt` again, for free: it retries the call the fault broke."""
        return self.broke is not None and self.broke.retried_by(key, attempt)

    @property
    def spent(self) -> bool:
        """Used up, and kept only to break the retries of the last call it broke."""
        return self.remaining == 0

    def expired(self, now: float) -> bool:
        return self.until is not None and now >= self.until

    @property
    def specificity(self) -> int:
        """A fault for one key beats one for every key; then one for one operation beats one for all."""
        return 2 * (self.key is not None) + (self.operation is not None)

    @property
    def text(self) -> str:
        """The message to report: the one armed, else the kind's default ("" for kinds without one)."""
        return self.message or DEFAULT_MESSAGES.get(self.kind, "")

    def used(self, key: str, attempt: Attempt) -> Fault | None:
        """This fault after one more use by `attempt`; None once it is used up.

        A fault that covers retries remembers the call it broke, and stays (spent) for its retries.
        """
        if self.retries:
            left = None if self.remaining is None else self.remaining - 1
            return replace(self, remaining=left, broke=Broken(key, attempt.operation, attempt.idempotency_key))
        if self.remaining is None:
            return self
        return replace(self, remaining=self.remaining - 1) if self.remaining > 1 else None

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "key": self.key,
            "remaining": self.remaining,
            "message": self.message,
            "seconds": self.seconds,
            "operation": self.operation,
            "status": self.status,
            "body": self.body,
            "retries": self.retries,
            "until": self.until,
        }


FAULTS = "faults"  # the one slot that holds the armed faults, oldest first


class FaultPlan:
    """The armed faults, consumed by the web layer as operations run; thread-safe.

    The faults live in `slots` (one name, `FAULTS`): in this process by default, or in the shared
    store, where a fault armed through any worker is used exactly once across all of them. `clock`
    tells when faults armed for a duration end (the mock's own clock, which tests move).
    """

    def __init__(self, slots: Slots[tuple[Fault, ...]] | None = None, clock: Clock | None = None) -> None:
        self._slots: Slots[tuple[Fault, ...]] = LocalSlots() if slots is None else slots
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"FaultPlan({len(self.list())} armed)"

    def arm(
        self,
        kind: FaultKind,
        *,
        key: str | None = None,
        count: int | None = None,
        message: str | None = None,
        seconds: float = 0.0,
        operation: str | None = None,
        status: int | None = None,
        body: str | None = None,
        retries: bool = False,
        duration: float | None = None,
    ) -> Fault:
        """Arm a fault for the next `count` matching operations (None: until cleared).

        `retries`: count calls, not requests: the retries of a call the fault broke are broken too, free.
        `duration`: the fault disarms itself this many seconds (of the plan's clock) from now.

        Raises:
            InvalidFault: `count` < 1, `seconds` negative or not finite, `duration` not a finite
                number > 0, `seconds`/`operation` given for a kind other than LATENCY, `retries` for
                LATENCY, `status`/`body` for a kind that is not an upstream answer, or a `status`
                outside 400-599.
        """
        _validate(kind, count, seconds, operation)
        _validate_answer(kind, status, body)
        if retries and kind is FaultKind.LATENCY:
            raise InvalidFault("retries applies to faults that break a call, not to LATENCY")
        if duration is not None and not (math.isfinite(duration) and duration > 0):
            raise InvalidFault(f"duration must be a finite number of seconds > 0, got {duration!r}")
        text = DEFAULT_MESSAGES.get(kind) if message is None else message
        until = None if duration is None else self._clock.now() + duration
        fault = Fault(kind, key, count, text, float(seconds), operation, status, body, retries, until)
        return self._slots.update(FAULTS, lambda faults: ((*(faults or ()), fault), fault))

    def take(
        self, kind: FaultKind, key: str, operation: str | None = None, *, attempt: Attempt = FIRST_TRY
    ) -> Fault | None:
        """Use up one use of the most specific matching fault (the oldest among equals) and return it.

        A retry of a call that a fault covering retries broke gets that fault again without using it;
        any other try drops the spent faults it matches.
        """
        if not self._slots.get(FAULTS):
            return None  # nothing armed, the usual case: a read, no change
        now = self._clock.now()

        def change(armed: tuple[Fault, ...] | None) -> tuple[tuple[Fault, ...] | None, Fault | None]:
            faults = _live(armed or (), now)
            matching = [i for i, f in enumerate(faults) if f.matches(kind, key, operation)]
            for i in matching:
                if faults[i].repeats_for(key, attempt):
                    return faults or None, faults[i]
            usable = [i for i in matching if not faults[i].spent]
            dropped = {i for i in matching if faults[i].spent}
            if not usable:
                return tuple(f for i, f in enumerate(faults) if i not in dropped) or None, None
            chosen = max(usable, key=lambda i: (faults[i].specificity, -i))
            return _spend(faults, {chosen}, key, attempt, dropped), faults[chosen]

        return self._slots.update(FAULTS, change)

    def latency(self, key: str, operation: str) -> float:
        """The summed delay of every matching LATENCY fault, using up one use of each."""
        if not self._slots.get(FAULTS):
            return 0.0
        now = self._clock.now()

        def change(armed: tuple[Fault, ...] | None) -> tuple[tuple[Fault, ...] | None, float]:
            faults = _live(armed or (), now)
            matching = {i for i, f in enumerate(faults) if f.matches(FaultKind.LATENCY, key, operation)}
            return _spend(faults, matching, key, Attempt(operation)), sum(faults[i].seconds for i in matching)

        return self._slots.update(FAULTS, change)

    def clear(self, kind: FaultKind | None = None, key: str | None = None) -> int:
        """Disarm the faults of a kind and/or a key (None: any) and return how many there were."""

        def change(armed: tuple[Fault, ...] | None) -> tuple[tuple[Fault, ...] | None, int]:
            faults = armed or ()
            kept = tuple(f for f in faults if not _selected(f, kind, key))
            return kept or None, len(faults) - len(kept)

        return self._slots.update(FAULTS, change)

    def list(self) -> tuple[Fault, ...]:
        return _live(self._slots.get(FAULTS) or (), self._clock.now())


def _live(faults: tuple[Fault, ...], now: float) -> tuple[Fault, ...]:
    """The armed faults whose duration has not run out at `now`."""
    return tuple(f for f in faults if not f.expired(now)) if any(f.until is not None for f in faults) else faults


def _validate(kind: FaultKind, count: int | None, seconds: float, operation: str | None) -> None:
    if count is not None and count < 1:
        raise InvalidFault(f"count must be at least 1 (or omitted for a fault that lasts), got {count!r}")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise InvalidFault(f"seconds must be a finite number >= 0, got {seconds!r}")
    if kind is not FaultKind.LATENCY and (seconds or operation is not None):
        raise InvalidFault(f"seconds and operation apply only to LATENCY faults, not to {kind.name}")


UPSTREAM_ANSWERS = (FaultKind.CREATE_FAIL, FaultKind.APPROVE_ERROR, FaultKind.CHAT_UPSTREAM_ERROR)
"""The kinds that stand for an HTTP answer of the proxy-router, so `status` and `body` choose it."""


def _validate_answer(kind: FaultKind, status: int | None, body: str | None) -> None:
    if kind not in UPSTREAM_ANSWERS and (status is not None or body is not None):
        kinds = ", ".join(k.value for k in UPSTREAM_ANSWERS)
        raise InvalidFault(f"status and body apply only to {kinds}, not to {kind.value}")
    if status is not None and not 400 <= status <= 599:
        raise InvalidFault(f"status must be an HTTP error status (400-599), got {status!r}")


def _spend(
    faults: tuple[Fault, ...],
    chosen: set[int],
    key: str,
    attempt: Attempt,
    dropped: frozenset[int] | set[int] = frozenset(),
) -> tuple[Fault, ...] | None:
    """`faults` after one use of each chosen one by `attempt`; used-up and `dropped` faults drop out
    (None: none left)."""
    after = (None if i in dropped else f.used(key, attempt) if i in chosen else f for i, f in enumerate(faults))
    return tuple(f for f in after if f is not None) or None


def _selected(fault: Fault, kind: FaultKind | None, key: str | None) -> bool:
    return (kind is None or fault.kind is kind) and (key is None or fault.key == key)
