"""API keys: the gateway's Authorization parsing (section 5.2) and the key registry."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given, settings, strategies as st

from mockserver.domain import (
    API_KEY_MISSING,
    INVALID_FORMAT,
    INVALID_KEY,
    ApiKey,
    AuthenticationFailed,
    InvalidKeyFormat,
    KeyRegistry,
    UnknownKey,
    immediate,
    is_well_formed,
    key_prefix,
    parse_authorization,
)
from tests.domain.conftest import FULL_KEY, KEY

SECRET = "0123456789abcdef" * 4
OTHER_SECRET = "f" * 64
SAME_PREFIX_KEY = f"{KEY}.{OTHER_SECRET}"
NEW_KEY = f"sk-New456.{SECRET}"
LEGACY = "sk-LeG123"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (FULL_KEY, FULL_KEY),
        (f"Bearer {FULL_KEY}", FULL_KEY),
        (f"Bearer Bearer {FULL_KEY}", FULL_KEY),
        ("Bearer sk-abcBearer xyz", "sk-abcxyz"),
        ("sk-", "sk-"),
        ("sk-Bearer x", "sk-Bearer x"),
    ],
    ids=["bare", "bearer", "bearer-twice", "every-bearer-removed", "sk-only", "bare-not-stripped"],
)
def test_auth_parsing_returns_the_candidate_key(header: str, key: str) -> None:
    assert parse_authorization(header) == key


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, API_KEY_MISSING),
        ("", API_KEY_MISSING),
        ("Bearer ", INVALID_FORMAT),
        (f"bearer {FULL_KEY}", INVALID_FORMAT),
        (f"Bearer  {FULL_KEY}", INVALID_FORMAT),
        (f"BEARER {FULL_KEY}", INVALID_FORMAT),
        (f"Bearer {JWT}", INVALID_FORMAT),
        (JWT, INVALID_FORMAT),
        (f" {FULL_KEY}", INVALID_FORMAT),
        (f"Basic {FULL_KEY}", INVALID_FORMAT),
        ("SK-AbC123", INVALID_FORMAT),
    ],
    ids=[
        "missing",
        "empty",
        "bearer-alone",
        "lowercase-bearer",
        "two-spaces",
        "uppercase-bearer",
        "jwt-bearer",
        "jwt-bare",
        "leading-space",
        "basic",
        "uppercase-sk",
    ],
)
def test_auth_parsing_rejects_with_the_gateway_text(header: str | None, detail: str) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        parse_authorization(header)
    assert caught.value.detail == detail


@settings(derandomize=True, database=None)
@given(st.text().filter(lambda s: not s.startswith(("Bearer ", "sk-")) and s != ""))
def test_auth_parsing_anything_not_sk_is_invalid_format(header: str) -> None:
    with pytest.raises(AuthenticationFailed, match=r"^Invalid API key format\. Must start with sk-$"):
        parse_authorization(header)


@settings(derandomize=True, database=None)
@given(st.text().map(lambda s: "sk-" + s).filter(lambda s: "Bearer " not in s))
def test_auth_parsing_bearer_prefix_is_stripped(key: str) -> None:
    assert parse_authorization("Bearer " + key) == key
    assert parse_authorization(key) == key


def test_keys_prefix_is_nine_characters() -> None:
    assert key_prefix(FULL_KEY) == KEY == "sk-AbC123"
    assert key_prefix("sk-") == "sk-"


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        (FULL_KEY, True),
        (f"sk-AbC12.{SECRET}", False),
        (f"sk-AbC1234.{SECRET}", False),
        (f"sk-AbC-12.{SECRET}", False),
        (f"{KEY}.{SECRET.upper()}", False),
        (f"{KEY}.{SECRET[:-1]}", False),
        (f"{KEY}{SECRET}", False),
        (f"{FULL_KEY}\n", False),
        (KEY, False),
    ],
    ids=["good", "short-prefix", "long-prefix", "dash", "uppercase-hex", "short-hex", "no-dot", "newline", "prefix"],
)
def test_keys_full_format_is_checked(key: str, ok: bool) -> None:
    assert is_well_formed(key) is ok


@pytest.fixture
def registry() -> KeyRegistry:
    return KeyRegistry(keys=[FULL_KEY], legacy_prefixes=[LEGACY])


def _count(registry: KeyRegistry) -> int:
    """How many keys the registry holds (the configured ones and those changed while serving)."""
    return sum(len(entries) for entries in immediate(registry.listed()).values())


def _denied(registry: KeyRegistry, header: str | None) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        immediate(registry.authenticate(header))
    return caught.value.detail


@pytest.mark.parametrize(
    "header",
    [FULL_KEY, f"Bearer {FULL_KEY}", f"Bearer Bearer {FULL_KEY}"],
    ids=["bare", "bearer", "bearer-twice"],
)
def test_registry_accepts_a_known_full_key(registry: KeyRegistry, header: str) -> None:
    assert immediate(registry.authenticate(header)) == KEY


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, API_KEY_MISSING),
        ("", API_KEY_MISSING),
        ("Bearer ", INVALID_FORMAT),
        (f"bearer {FULL_KEY}", INVALID_FORMAT),
        (f"Bearer  {FULL_KEY}", INVALID_FORMAT),
        (f"Bearer {JWT}", INVALID_FORMAT),
        ("sk-", INVALID_KEY),
        (KEY, INVALID_KEY),
        (f"{KEY}.{OTHER_SECRET}", INVALID_KEY),
        (FULL_KEY[:-1], INVALID_KEY),
        (FULL_KEY + "0", INVALID_KEY),
        (NEW_KEY, INVALID_KEY),
    ],
    ids=[
        "missing",
        "empty",
        "bearer-alone",
        "lowercase-bearer",
        "two-spaces",
        "jwt",
        "sk-only",
        "prefix-only",
        "wrong-secret",
        "truncated",
        "extended",
        "unknown-prefix",
    ],
)
def test_registry_denies_with_the_gateway_text(registry: KeyRegistry, header: str | None, detail: str) -> None:
    assert _denied(registry, header) == detail


@pytest.mark.parametrize("header", [LEGACY, f"{LEGACY}.anything", f"Bearer {LEGACY}XYZ", f"{LEGACY}.{SECRET}"], ids=str)
def test_registry_legacy_key_passes_on_its_prefix_alone(registry: KeyRegistry, header: str) -> None:
    assert immediate(registry.authenticate(header)) == LEGACY


def test_registry_legacy_prefix_must_be_complete(registry: KeyRegistry) -> None:
    assert _denied(registry, LEGACY[:-1]) == INVALID_KEY


def test_registry_same_prefix_keys_both_authenticate(registry: KeyRegistry) -> None:
    immediate(registry.add(SAME_PREFIX_KEY))
    assert immediate(registry.authenticate(FULL_KEY)) == immediate(registry.authenticate(SAME_PREFIX_KEY)) == KEY
    assert _count(registry) == 3
    assert immediate(registry.prefixes()) == (KEY, LEGACY)


def test_registry_compares_full_keys_in_constant_time(registry: KeyRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    compare = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert immediate(registry.authenticate(FULL_KEY)) == KEY
    assert len(calls) == 1
    assert FULL_KEY not in calls[0]


@pytest.mark.parametrize(
    ("revoked_keys_work", "denied"), [(False, True), (True, False)], ids=["fixed-401", "historical-works"]
)
def test_registry_revoked_key_behaviour_is_a_switch(revoked_keys_work: bool, denied: bool) -> None:
    registry = KeyRegistry(keys=[FULL_KEY], legacy_prefixes=[LEGACY], revoked_keys_work=revoked_keys_work)
    immediate(registry.revoke(FULL_KEY))
    immediate(registry.revoke(LEGACY))
    for header, identity in ((FULL_KEY, KEY), (LEGACY, LEGACY)):
        if denied:
            assert _denied(registry, header) == INVALID_KEY
        else:
            assert immediate(registry.authenticate(header)) == identity


def test_registry_revoke_by_prefix_revokes_every_key_with_it(registry: KeyRegistry) -> None:
    immediate(registry.add(SAME_PREFIX_KEY))
    immediate(registry.revoke(KEY))
    assert _denied(registry, FULL_KEY) == _denied(registry, SAME_PREFIX_KEY) == INVALID_KEY
    assert immediate(registry.authenticate(LEGACY)) == LEGACY


def test_registry_revoke_by_full_key_revokes_only_that_key(registry: KeyRegistry) -> None:
    immediate(registry.add(SAME_PREFIX_KEY))
    immediate(registry.revoke(FULL_KEY))
    assert _denied(registry, FULL_KEY) == INVALID_KEY
    assert immediate(registry.authenticate(SAME_PREFIX_KEY)) == KEY


@pytest.mark.parametrize("value", [NEW_KEY, "sk-New456", f"{KEY}.{OTHER_SECRET}"], ids=str)
def test_registry_revoke_unknown_key_names_only_the_prefix(registry: KeyRegistry, value: str) -> None:
    with pytest.raises(UnknownKey) as caught:
        immediate(registry.revoke(value))
    assert caught.value.detail == f"no API key {key_prefix(value)!r} is registered"


@pytest.mark.parametrize(
    "bad",
    [f"sk-AbC12.{SECRET}", f"{KEY}.{SECRET.upper()}", f"{KEY}:{SECRET}", "sk-AbC123", "", JWT],
    ids=["short-prefix", "uppercase-hex", "colon", "prefix-only", "empty", "jwt"],
)
def test_registry_add_rejects_a_malformed_key_without_echoing_it(registry: KeyRegistry, bad: str) -> None:
    with pytest.raises(InvalidKeyFormat, match="is not well-formed: expected 'sk-'") as caught:
        immediate(registry.add(bad))
    assert bad[9:] == "" or bad[9:] not in caught.value.detail
    assert _count(registry) == 2


@pytest.mark.parametrize(
    ("bad", "shown"),
    [("sk-AbC12", "'sk-AbC12'"), ("pk-AbC123", "'pk-AbC123'"), (FULL_KEY, "'sk-AbC123'...")],
    ids=["short", "not-sk", "full-key"],
)
def test_registry_add_legacy_rejects_a_malformed_prefix(registry: KeyRegistry, bad: str, shown: str) -> None:
    with pytest.raises(InvalidKeyFormat) as caught:
        immediate(registry.add_legacy(bad))
    assert caught.value.detail == f"legacy key prefix {shown} is not well-formed: expected 'sk-' + 6 letters or digits"
    assert SECRET not in caught.value.detail


def test_registry_adding_twice_changes_nothing(registry: KeyRegistry) -> None:
    assert immediate(registry.add(FULL_KEY)) == KEY
    assert immediate(registry.add_legacy(LEGACY)) == LEGACY
    assert _count(registry) == 2


def test_registry_readding_a_revoked_key_keeps_it_revoked(registry: KeyRegistry) -> None:
    immediate(registry.revoke(FULL_KEY))
    immediate(registry.add(FULL_KEY))
    assert _denied(registry, FULL_KEY) == INVALID_KEY
    assert _count(registry) == 2


def test_registry_describe_never_shows_the_key(registry: KeyRegistry) -> None:
    immediate(registry.revoke(LEGACY))
    assert immediate(registry.describe()) == [
        {"prefix": KEY, "legacy": False, "revoked": False, "orphan": False},
        {"prefix": LEGACY, "legacy": True, "revoked": True, "orphan": False},
    ]
    for text in (repr(registry), repr(immediate(registry.describe())), repr(ApiKey(KEY, "hash"))):
        assert SECRET not in text
        assert "hash" not in text


def test_registry_empty_by_default() -> None:
    registry = KeyRegistry()
    assert _count(registry) == 0
    assert immediate(registry.prefixes()) == ()
    assert _denied(registry, FULL_KEY) == INVALID_KEY


def test_registry_accept_any_registers_a_well_formed_key_on_first_use() -> None:
    registry = KeyRegistry(accept_any=True)
    assert immediate(registry.authenticate(f"Bearer {NEW_KEY}")) == "sk-New456"
    assert immediate(registry.authenticate(NEW_KEY)) == "sk-New456"
    assert immediate(registry.describe()) == [
        {"prefix": "sk-New456", "legacy": False, "revoked": False, "orphan": False}
    ]


def test_registry_accept_any_takes_a_new_secret_for_a_known_prefix(registry: KeyRegistry) -> None:
    registry.accept_any = True
    assert immediate(registry.authenticate(SAME_PREFIX_KEY)) == KEY
    assert _count(registry) == 3


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, API_KEY_MISSING),
        (f"Bearer {JWT}", INVALID_FORMAT),
        ("sk-", INVALID_KEY),
        ("sk-New456", INVALID_KEY),
        (f"sk-New456.{SECRET[:-2]}", INVALID_KEY),
    ],
    ids=["missing", "jwt", "sk-only", "prefix-only", "short-secret"],
)
def test_registry_accept_any_still_denies_malformed_values(header: str | None, detail: str) -> None:
    registry = KeyRegistry(accept_any=True)
    assert _denied(registry, header) == detail
    assert _count(registry) == 0


def test_registry_accept_any_does_not_revive_a_revoked_key(registry: KeyRegistry) -> None:
    registry.accept_any = True
    immediate(registry.revoke(FULL_KEY))
    assert _denied(registry, FULL_KEY) == INVALID_KEY
