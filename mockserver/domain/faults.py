"""Armed faults: what the mock should get wrong next, for which key, how often."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Any, TypedDict, Unpack

from mockserver.domain.clock import Clock, SystemClock
from mockserver.domain.errors import InvalidFault
from mockserver.domain.shared import LocalSlots, Slots
from mockserver.domain.upstream import CHAT_FAILED, UNREACHABLE


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
    FaultKind.UPSTREAM_UNREACHABLE: UNREACHABLE,
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


UPSTREAM_ANSWERS = (FaultKind.CREATE_FAIL, FaultKind.APPROVE_ERROR, FaultKind.CHAT_UPSTREAM_ERROR)
"""The kinds that stand for an HTTP answer of the proxy-router, so `status` and `body` choose it."""


@dataclass(frozen=True)
class Scope:
    """The kinds an option applies to, and the refusal (`{kind}`: the FaultKind) when it is given for another."""

    kinds: frozenset[FaultKind]
    refusal: str


LATENCY_ONLY = Scope(
    frozenset({FaultKind.LATENCY}), "seconds and operation apply only to LATENCY faults, not to {kind.name}"
)
ANSWERS_ONLY = Scope(
    frozenset(UPSTREAM_ANSWERS),
    "status and body apply only to " + ", ".join(k.value for k in UPSTREAM_ANSWERS) + ", not to {kind.value}",
)
CALLS_ONLY = Scope(
    frozenset(FaultKind) - {FaultKind.LATENCY}, "retries applies to faults that break a call, not to {kind.name}"
)


@dataclass(frozen=True)
class Rule:
    """What one fault option means and accepts: the one definition the admin spec, the fixture's `fault(...)`
    and the README are checked against (tests/domain/test_fault_definition.py).

    `words` name the accepted values in a refusal (`<name> must be <words>, got <value>`); `minimum`,
    `exclusive_minimum` and `maximum` bound a number (`finite`: no NaN or infinity); `scope`: the kinds
    it applies to (None: every kind).
    """

    doc: str
    words: str = ""
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    finite: bool = False
    scope: Scope | None = None

    def refusal(self, name: str, value: object) -> str | None:
        """Why `value` is out of bounds for the option `name`, if it is (`value` has the option's type)."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        low = self.minimum is not None and value < self.minimum
        low = low or (self.exclusive_minimum is not None and value <= self.exclusive_minimum)
        high = self.maximum is not None and value > self.maximum
        if low or high or (self.finite and not math.isfinite(value)):
            return f"{name} must be {self.words}, got {value!r}"
        return None


def option(default: object, rule: Rule) -> Any:
    """A FaultRequest field: its default and its rule."""
    return field(default=default, metadata={"rule": rule})


@dataclass(frozen=True)
class FaultRequest:
    """A fault to arm: its kind and options, validated when made (the only place a fault request is checked).

    Raises:
        InvalidFault: an option of the wrong type, out of bounds, or given for a kind it does not apply to.
    """

    kind: FaultKind
    key: str | None = option(None, Rule("A key prefix; absent = every key."))
    count: int | None = option(
        None,
        Rule(
            "How many uses (calls, with `retries`); absent = until cleared.",
            "at least 1 (or omitted for a fault that lasts)",
            minimum=1,
        ),
    )
    message: str | None = option(None, Rule("The upstream error text to report (a default is used when absent)."))
    seconds: float = option(
        0.0, Rule("Added latency (latency faults).", "a finite number >= 0", minimum=0, finite=True, scope=LATENCY_ONLY)
    )
    operation: str | None = option(
        None, Rule("An operationId (latency faults); absent = every operation.", scope=LATENCY_ONLY)
    )
    status: int | None = option(
        None,
        Rule(
            "The upstream's HTTP status (default 500; 4xx is a client_error on approve and chat).",
            "an HTTP error status (400-599)",
            minimum=400,
            maximum=599,
            scope=ANSWERS_ONLY,
        ),
    )
    body: str | None = option(
        None, Rule('The upstream\'s raw body; default `{"error":"<message>"}`.', scope=ANSWERS_ONLY)
    )
    retries: bool = option(
        False, Rule("A use is one call of the client, its retries included (not for latency).", scope=CALLS_ONLY)
    )
    duration: float | None = option(
        None,
        Rule(
            "The fault disarms itself this many seconds (of the mock's clock) after arming.",
            "a finite number of seconds > 0",
            exclusive_minimum=0,
            finite=True,
        ),
    )

    def __post_init__(self) -> None:
        for name, (types, rule) in fault_options().items():
            value, default = getattr(self, name), FAULT_DEFAULTS[name]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise InvalidFault(f"{name} must be {_type_words(types)}, got {value!r}")
            if rule.scope is not None and value != default and self.kind not in rule.scope.kinds:
                raise InvalidFault(rule.scope.refusal.format(kind=self.kind))
            refused = rule.refusal(name, value)
            if refused is not None:
                raise InvalidFault(refused)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> FaultRequest:
        """A request from the admin API's JSON (`{"kind": ..., <options>}`)."""
        kinds = {kind.value: kind for kind in FaultKind}
        kind = body.get("kind")
        if not isinstance(kind, str) or kind not in kinds:
            raise InvalidFault(f"kind must be one of {', '.join(kinds)}, got {kind!r}")
        unknown = set(body) - {"kind", *fault_options()}
        if unknown:
            raise InvalidFault(
                f"unknown fields: {', '.join(sorted(unknown))}; allowed: kind, {', '.join(fault_options())}"
            )
        return cls(kinds[kind], **{name: value for name, value in body.items() if name != "kind"})


_TYPES: dict[object, tuple[type, ...]] = {
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
    "float": (int, float),
    "float | None": (int, float, type(None)),
    "bool": (bool,),
}


def fault_options() -> dict[str, tuple[tuple[type, ...], Rule]]:
    """Each option of a FaultRequest (all but `kind`): the Python types it accepts and its rule, in order."""
    return _OPTIONS


def _type_words(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
    return " or ".join(dict.fromkeys(names[t] for t in types if not (t is int and float in types)))


_OPTIONS = {f.name: (_TYPES[f.type], f.metadata["rule"]) for f in fields(FaultRequest) if f.name != "kind"}
FAULT_DEFAULTS = {f.name: f.default for f in fields(FaultRequest) if f.name != "kind"}


class FaultOptions(TypedDict, total=False):
    """FaultRequest's options but `key`, as keyword arguments (`FaultPlan.arm`, the fixture's `fault(...)`): the
    same names and types, checked against FaultRequest by tests/domain/test_fault_definition.py."""

    count: int | None
    message: str | None
    seconds: float
    operation: str | None
    status: int | None
    body: str | None
    retries: bool
    duration: float | None


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

    async def arm(self, kind: FaultKind, *, key: str | None = None, **options: Unpack[FaultOptions]) -> Fault:
        """Arm a fault for the next `count` matching operations (None: until cleared); the options are
        `FaultRequest`'s.

        Raises:
            InvalidFault: the request is not valid (see `FaultRequest`).
        """
        return await self.arm_request(FaultRequest(kind, key, **options))

    async def arm_request(self, request: FaultRequest) -> Fault:
        """Arm `request`: for `count` uses (None: until cleared), for `duration` seconds of the plan's clock."""
        r = request
        text = DEFAULT_MESSAGES.get(r.kind) if r.message is None else r.message
        until = None if r.duration is None else self._clock.now() + r.duration
        fault = Fault(r.kind, r.key, r.count, text, float(r.seconds), r.operation, r.status, r.body, r.retries, until)
        return await self._slots.update(FAULTS, lambda faults: ((*(faults or ()), fault), fault))

    async def take(
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

        return await self._slots.update(FAULTS, change)

    async def take_first(self, kinds: Iterable[FaultKind], key: str, *, attempt: Attempt = FIRST_TRY) -> Fault | None:
        """One use of the first of `kinds` (in their order) armed for `key` (see `take`); None if none is."""
        if not self._slots.get(FAULTS):
            return None  # nothing armed, the usual case: one read for all the kinds
        for kind in kinds:
            fault = await self.take(kind, key, attempt=attempt)
            if fault is not None:
                return fault
        return None

    async def latency(self, key: str, operation: str) -> float:
        """The summed delay of every matching LATENCY fault, using up one use of each."""
        if not self._slots.get(FAULTS):
            return 0.0
        now = self._clock.now()

        def change(armed: tuple[Fault, ...] | None) -> tuple[tuple[Fault, ...] | None, float]:
            faults = _live(armed or (), now)
            matching = {i for i, f in enumerate(faults) if f.matches(FaultKind.LATENCY, key, operation)}
            return _spend(faults, matching, key, Attempt(operation)), sum(faults[i].seconds for i in matching)

        return await self._slots.update(FAULTS, change)

    async def clear(self, kind: FaultKind | None = None, key: str | None = None) -> int:
        """Disarm the faults of a kind and/or a key (None: any) and return how many there were."""

        def change(armed: tuple[Fault, ...] | None) -> tuple[tuple[Fault, ...] | None, int]:
            faults = armed or ()
            kept = tuple(f for f in faults if not _selected(f, kind, key))
            return kept or None, len(faults) - len(kept)

        return await self._slots.update(FAULTS, change)

    def list(self) -> tuple[Fault, ...]:
        return _live(self._slots.get(FAULTS) or (), self._clock.now())


def _live(faults: tuple[Fault, ...], now: float) -> tuple[Fault, ...]:
    """The armed faults whose duration has not run out at `now`."""
    return tuple(f for f in faults if not f.expired(now)) if any(f.until is not None for f in faults) else faults


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
