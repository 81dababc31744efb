"""API keys: the gateway's Authorization parsing and a registry of known keys (section 5)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from mockserver.domain.errors import AuthenticationFailed, InvalidKeyFormat, UnknownKey
from mockserver.domain.shared import LocalSlots, Slots

API_KEY_MISSING = "API key missing"
INVALID_FORMAT = "Invalid API key format. Must start with sk-"
INVALID_KEY = "Invalid API key"
NO_USER = "API key not associated with a valid user"

BEARER = "Bearer "
PREFIX_LENGTH = 9
_PREFIX = re.compile(r"sk-[A-Za-z0-9]{6}")
_FULL_KEY = re.compile(r"sk-[A-Za-z0-9]{6}\.[0-9a-f]{64}")
R = TypeVar("R")
_FORMAT_HINT = "expected 'sk-' + 6 letters or digits + '.' + 64 lowercase hex characters"


def parse_authorization(value: str | None) -> str:
    """Return the candidate key in an Authorization header value, exactly as the gateway does.

    Only a value starting with exactly "Bearer " is stripped, and then of every "Bearer ".

    Raises:
        AuthenticationFailed: `API_KEY_MISSING` or `INVALID_FORMAT`.
    """
    if not value:
        raise AuthenticationFailed(API_KEY_MISSING)
    if value.startswith(BEARER):
        value = value.replace(BEARER, "")
    if not value.startswith("sk-"):
        raise AuthenticationFailed(INVALID_FORMAT)
    return value


def key_prefix(key: str) -> str:
    """The first 9 characters of a key: its lookup index and its public identity."""
    return key[:PREFIX_LENGTH]


def is_well_formed(key: str) -> bool:
    """Whether `key` has the format of a key the gateway generates (section 5.1)."""
    return _FULL_KEY.fullmatch(key) is not None


def _shown(key: str) -> str:
    """How a key appears in messages: its prefix only, never the secret part."""
    return repr(key_prefix(key)) + ("..." if len(key) > PREFIX_LENGTH else "")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """A registered key: its prefix and a hash of the full key (None for a legacy key).

    An `orphan` key's row has no user: the gateway finds it, then refuses it (`NO_USER`).
    """

    prefix: str
    secret_hash: str | None = field(repr=False)
    revoked: bool = False
    orphan: bool = False

    @property
    def legacy(self) -> bool:
        return self.secret_hash is None

    def matches(self, candidate_hash: str) -> bool:
        """Legacy keys match on the prefix alone; modern keys compare hashes in constant time."""
        if self.secret_hash is None:
            return True
        return hmac.compare_digest(self.secret_hash, candidate_hash)


class KeyRegistry:
    """The keys the mock accepts, indexed (not uniquely) by prefix like the gateway's table.

    The keys its configuration names (`register`, before serving) are the same in every worker, so they
    stay in this process; what changes while serving (`add`, `add_legacy`, `revoke`, a first use with
    `accept_any`) lives in `slots`, one name per prefix, over the configured entries: in this process by
    default, or in the shared store, where a key added or revoked through any worker is known to all.
    """

    def __init__(
        self,
        *,
        keys: Iterable[str] = (),
        legacy_prefixes: Iterable[str] = (),
        accept_any: bool = False,
        revoked_keys_work: bool = False,
        slots: Slots[tuple[ApiKey, ...]] | None = None,
    ) -> None:
        self.accept_any = accept_any
        self.revoked_keys_work = revoked_keys_work
        self._by_prefix: Slots[tuple[ApiKey, ...]] = LocalSlots() if slots is None else slots
        self._configured: dict[str, tuple[ApiKey, ...]] = {}
        for key in keys:
            self.register(key)
        for prefix in legacy_prefixes:
            self.register_legacy(prefix)

    def __repr__(self) -> str:
        return f"KeyRegistry(configured={tuple(self._configured)!r}, accept_any={self.accept_any!r})"

    def configured(self) -> int:
        """How many keys the configuration names (the start-up banner counts them; they are in every worker)."""
        return sum(len(entries) for entries in self._configured.values())

    def register(self, full_key: str, *, orphan: bool = False, revoked: bool = False) -> str:
        """Configure a full key (`orphan`: with no user; `revoked`: only this key, revoked) before serving."""
        prefix = self._configure(_entry(full_key, orphan))
        if revoked:
            self._configured[prefix] = _revoking(full_key)(self._configured[prefix])[0]
        return prefix

    def register_legacy(self, prefix: str) -> str:
        """Configure a legacy key, checked on its prefix only (section 5.2, step 5), before serving."""
        return self._configure(_legacy_entry(prefix))

    async def add(self, full_key: str, *, orphan: bool = False) -> str:
        """Register a full key (`orphan`: with no user) and return its prefix; adding it twice changes nothing."""
        entry = _entry(full_key, orphan)
        return await self._change(entry.prefix, _inserting(entry))

    async def add_legacy(self, prefix: str) -> str:
        """Register a legacy key, checked on its prefix only (section 5.2, step 5)."""
        entry = _legacy_entry(prefix)
        return await self._change(entry.prefix, _inserting(entry))

    async def revoke(self, key_or_prefix: str) -> None:
        """Revoke one full key, or every key with a 9-character prefix."""
        await self._change(key_prefix(key_or_prefix), _revoking(key_or_prefix))

    def knows(self, prefix: str) -> bool:
        """Whether a key with this 9-character prefix can authenticate, now or (`accept_any`) on first use."""
        if self._entries(prefix):
            return True
        return self.accept_any and _PREFIX.fullmatch(prefix) is not None

    async def authenticate(self, header_value: str | None, *, active_only: bool = False) -> str:
        """Return the identity (the prefix) of the key in an Authorization header value.

        `active_only`: the second key check of chat completions and embeddings, which refuses a revoked
        key even with `revoked_keys_work` (chat-completions.md 2.2), after the first one's checks.

        Raises:
            AuthenticationFailed: with the gateway's text for the first check that fails.
        """
        candidate = parse_authorization(header_value)
        digest = _digest(candidate)
        matching = [e for e in self._entries(key_prefix(candidate)) if e.matches(digest)]
        if not matching:
            return await self._first_use(candidate)
        usable = [e for e in matching if self.revoked_keys_work or not e.revoked]
        if not usable:
            raise AuthenticationFailed(INVALID_KEY)
        if usable[0].orphan:
            raise AuthenticationFailed(NO_USER)
        if active_only and all(e.revoked for e in usable):
            raise AuthenticationFailed(INVALID_KEY)
        return usable[0].prefix

    async def listed(self) -> dict[str, tuple[ApiKey, ...]]:
        """Every prefix's entries, the changes made while serving over the configured ones, by prefix."""
        return dict(sorted({**self._configured, **dict(await self._by_prefix.items())}.items()))

    async def prefixes(self) -> tuple[str, ...]:
        return tuple(await self.listed())

    async def describe(self) -> list[dict[str, object]]:
        """A JSON-ready listing of the keys; never the full key, nor its hash."""
        entries = [e for listed in (await self.listed()).values() for e in listed]
        return [{"prefix": e.prefix, "legacy": e.legacy, "revoked": e.revoked, "orphan": e.orphan} for e in entries]

    def _entries(self, prefix: str) -> tuple[ApiKey, ...]:
        changed = self._by_prefix.get(prefix)
        return self._configured.get(prefix, ()) if changed is None else changed

    async def _first_use(self, candidate: str) -> str:
        # The gateway answers an unknown prefix and a wrong secret alike; accept_any registers instead.
        if self.accept_any and is_well_formed(candidate):
            return await self.add(candidate)
        raise AuthenticationFailed(INVALID_KEY)

    def _configure(self, entry: ApiKey) -> str:
        self._configured[entry.prefix] = _inserting(entry)(self._configured.get(entry.prefix))[0]
        return entry.prefix

    async def _change(self, prefix: str, change: Callable[[tuple[ApiKey, ...]], tuple[tuple[ApiKey, ...], R]]) -> R:
        """`change` the prefix's entries in `slots`, starting from the configured ones the first time."""
        configured = self._configured.get(prefix, ())
        return await self._by_prefix.update(prefix, lambda entries: change(configured if entries is None else entries))


def _entry(full_key: str, orphan: bool) -> ApiKey:
    if not is_well_formed(full_key):
        raise InvalidKeyFormat(f"API key {_shown(full_key)} is not well-formed: {_FORMAT_HINT}")
    return ApiKey(key_prefix(full_key), _digest(full_key), orphan=orphan)


def _legacy_entry(prefix: str) -> ApiKey:
    if _PREFIX.fullmatch(prefix) is None:
        hint = "expected 'sk-' + 6 letters or digits"
        raise InvalidKeyFormat(f"legacy key prefix {_shown(prefix)} is not well-formed: {hint}")
    return ApiKey(prefix, None)


def _inserting(entry: ApiKey) -> Callable[[tuple[ApiKey, ...] | None], tuple[tuple[ApiKey, ...], str]]:
    def change(entries: tuple[ApiKey, ...] | None) -> tuple[tuple[ApiKey, ...], str]:
        entries = entries or ()
        # Adding a known key again keeps its entry (a revoked key stays revoked).
        if all(e.secret_hash != entry.secret_hash for e in entries):
            entries = (*entries, entry)
        return entries, entry.prefix

    return change


def _revoking(key_or_prefix: str) -> Callable[[tuple[ApiKey, ...]], tuple[tuple[ApiKey, ...], None]]:
    def change(entries: tuple[ApiKey, ...]) -> tuple[tuple[ApiKey, ...], None]:
        if not any(_names(e, key_or_prefix) for e in entries):
            raise UnknownKey(f"no API key {key_prefix(key_or_prefix)!r} is registered")
        return tuple(replace(e, revoked=True) if _names(e, key_or_prefix) else e for e in entries), None

    return change


def _names(entry: ApiKey, key_or_prefix: str) -> bool:
    return len(key_or_prefix) == PREFIX_LENGTH or entry.matches(_digest(key_or_prefix))
