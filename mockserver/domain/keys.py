"""API keys: the gateway's Authorization parsing and a registry of known keys (section 5)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

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

    The entries live in `slots`, one name per prefix: in this process by default, or in the shared
    store, where a key added or revoked through any worker is known to all of them.
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
        for key in keys:
            self.add(key)
        for prefix in legacy_prefixes:
            self.add_legacy(prefix)

    def __len__(self) -> int:
        return sum(len(entries) for _, entries in self._by_prefix.items())

    def __repr__(self) -> str:
        return f"KeyRegistry(prefixes={self.prefixes()!r}, accept_any={self.accept_any!r})"

    def add(self, full_key: str, *, orphan: bool = False) -> str:
        """Register a full key (`orphan`: with no user) and return its prefix; adding it twice changes nothing."""
        if not is_well_formed(full_key):
            raise InvalidKeyFormat(f"API key {_shown(full_key)} is not well-formed: {_FORMAT_HINT}")
        return self._insert(ApiKey(key_prefix(full_key), _digest(full_key), orphan=orphan))

    def add_legacy(self, prefix: str) -> str:
        """Register a legacy key, checked on its prefix only (section 5.2, step 5)."""
        if _PREFIX.fullmatch(prefix) is None:
            hint = "expected 'sk-' + 6 letters or digits"
            raise InvalidKeyFormat(f"legacy key prefix {_shown(prefix)} is not well-formed: {hint}")
        return self._insert(ApiKey(prefix, None))

    def revoke(self, key_or_prefix: str) -> None:
        """Revoke one full key, or every key with a 9-character prefix."""
        prefix = key_prefix(key_or_prefix)

        def change(entries: tuple[ApiKey, ...] | None) -> tuple[tuple[ApiKey, ...] | None, None]:
            if not any(self._names(e, key_or_prefix) for e in entries or ()):
                raise UnknownKey(f"no API key {prefix!r} is registered")
            return tuple(self._revoked(e, key_or_prefix) for e in entries or ()), None

        self._by_prefix.update(prefix, change)

    def knows(self, prefix: str) -> bool:
        """Whether a key with this 9-character prefix can authenticate, now or (`accept_any`) on first use."""
        if self._by_prefix.get(prefix):
            return True
        return self.accept_any and _PREFIX.fullmatch(prefix) is not None

    def authenticate(self, header_value: str | None, *, active_only: bool = False) -> str:
        """Return the identity (the prefix) of the key in an Authorization header value.

        `active_only`: the second key check of chat completions and embeddings, which refuses a revoked
        key even with `revoked_keys_work` (chat-completions.md 2.2), after the first one's checks.

        Raises:
            AuthenticationFailed: with the gateway's text for the first check that fails.
        """
        candidate = parse_authorization(header_value)
        digest = _digest(candidate)
        matching = [e for e in self._by_prefix.get(key_prefix(candidate)) or () if e.matches(digest)]
        if not matching:
            return self._first_use(candidate)
        usable = [e for e in matching if self.revoked_keys_work or not e.revoked]
        if not usable:
            raise AuthenticationFailed(INVALID_KEY)
        if usable[0].orphan:
            raise AuthenticationFailed(NO_USER)
        if active_only and all(e.revoked for e in usable):
            raise AuthenticationFailed(INVALID_KEY)
        return usable[0].prefix

    def prefixes(self) -> tuple[str, ...]:
        return tuple(prefix for prefix, _ in self._by_prefix.items())

    def describe(self) -> list[dict[str, object]]:
        """A JSON-ready listing of the keys; never the full key, nor its hash."""
        entries = [e for _, listed in self._by_prefix.items() for e in listed]
        return [{"prefix": e.prefix, "legacy": e.legacy, "revoked": e.revoked, "orphan": e.orphan} for e in entries]

    def _first_use(self, candidate: str) -> str:
        # The gateway answers an unknown prefix and a wrong secret alike; accept_any registers instead.
        if self.accept_any and is_well_formed(candidate):
            return self.add(candidate)
        raise AuthenticationFailed(INVALID_KEY)

    def _insert(self, entry: ApiKey) -> str:
        def change(entries: tuple[ApiKey, ...] | None) -> tuple[tuple[ApiKey, ...], str]:
            entries = entries or ()
            # Adding a known key again keeps its entry (a revoked key stays revoked).
            if all(e.secret_hash != entry.secret_hash for e in entries):
                entries = (*entries, entry)
            return entries, entry.prefix

        return self._by_prefix.update(entry.prefix, change)

    @staticmethod
    def _names(entry: ApiKey, key_or_prefix: str) -> bool:
        return len(key_or_prefix) == PREFIX_LENGTH or entry.matches(_digest(key_or_prefix))

    @classmethod
    def _revoked(cls, entry: ApiKey, key_or_prefix: str) -> ApiKey:
        return replace(entry, revoked=True) if cls._names(entry, key_or_prefix) else entry
