"""The mock's configuration: one frozen object, built from flags and environment at the edge."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

ENV_PREFIX = "MORPHEUS_MOCK_"


class SelfCheck(Enum):
    """What the mock does when one of its own responses breaks the spec."""

    RAISE = "raise"  # tests: a violation is an exception
    LOG = "log"  # serving: a violation is logged loudly
    OFF = "off"


@dataclass(frozen=True)
class Config:
    """Everything the mock is told at start; passed explicitly to `create_app`."""

    host: str = "127.0.0.1"
    port: int = 8000
    keys: tuple[str, ...] = ()
    keys_file: Path | None = None
    models_file: Path | None = None
    bids_file: Path | None = None
    seed: int | None = None
    accept_any_key: bool = False
    revoked_keys_work: bool = False
    admin: bool = False
    admin_token: str | None = None
    self_check: SelfCheck = SelfCheck.LOG
    fallback_key_note: bool = True
    min_session_duration: int = 300
    chain_latency: float = 0.05  # seconds the simulated chain takes to open a bid session (parallel bids collide)
    enforce_https: bool = False
    max_body_size: int = 1_048_576  # bytes; 0: no limit
    store: str | None = None  # redis://HOST:PORT/N: sessions shared by several workers and hosts
    workers: int = 1
    journal_size: int = 1000
    history_size: int = 1000
    log_level: str = "info"


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(ENV_PREFIX + name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise SystemExit(f"{ENV_PREFIX}{name}={value!r}: use 1/0, true/false, yes/no or on/off")
    return value in _TRUE


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; every flag's default comes from its MORPHEUS_MOCK_* environment variable."""

    def env(name: str, default: str | None = None) -> str | None:
        return environ.get(ENV_PREFIX + name, default)

    parser = argparse.ArgumentParser(
        prog="morpheus-mock",
        description="A stateful mock of the Morpheus API Gateway session API (release v1.14.0).",
        epilog=f"Every option can also be set by an environment variable {ENV_PREFIX}<OPTION> "
        "(for example MORPHEUS_MOCK_PORT=9000, MORPHEUS_MOCK_KEY='sk-... sk-...', MORPHEUS_MOCK_ADMIN=1).",
    )
    add = parser.add_argument
    add("--host", default=env("HOST", "127.0.0.1"), help="address to bind (default 127.0.0.1)")
    add("--port", type=int, default=int(env("PORT", "8000") or 8000), help="port (default 8000; 0 = any free)")
    add(
        "--key",
        action="append",
        dest="keys",
        default=(env("KEY") or "").split(),
        metavar="KEY",
        help="add a full API key (sk-XXXXXX.<64 hex>); repeatable",
    )
    add(
        "--keys",
        type=Path,
        dest="keys_file",
        default=env("KEYS"),
        metavar="FILE",
        help="a keys file: one key per line; 'legacy sk-XXXXXX' for a prefix-only key; 'revoked KEY'; "
        "'orphan KEY' for a key with no user",
    )
    add("--models", type=Path, dest="models_file", default=env("MODELS"), metavar="FILE", help="a models JSON file")
    add("--bids", type=Path, dest="bids_file", default=env("BIDS"), metavar="FILE", help="a bids JSON file")
    add("--seed", type=int, default=env("SEED"), help="make session ids reproducible")
    add(
        "--accept-any-key",
        action="store_true",
        default=_env_flag(environ, "ACCEPT_ANY_KEY"),
        help="accept every well-formed key (quick starts)",
    )
    add(
        "--revoked-keys-work",
        action="store_true",
        default=_env_flag(environ, "REVOKED_KEYS_WORK"),
        help="historical v1.14.0 behaviour: revoked keys still authenticate (default: 401 Invalid API key)",
    )
    add("--admin", action="store_true", default=_env_flag(environ, "ADMIN"), help="enable the /__admin API")
    add("--admin-token", default=env("ADMIN_TOKEN"), help="require this token (X-Admin-Token) on /__admin")
    add(
        "--self-check",
        choices=[mode.value for mode in SelfCheck],
        default=env("SELF_CHECK", "log"),
        help="validate every response against the spec: raise, log (default) or off",
    )
    add(
        "--no-fallback-note",
        action="store_true",
        default=_env_flag(environ, "NO_FALLBACK_NOTE"),
        help="answer as a gateway with its own signing key (no 'note' on bidsession/approve)",
    )
    add(
        "--min-session-duration",
        type=int,
        default=int(env("MIN_SESSION_DURATION", "300") or 300),
        help="shortest duration the simulated chain accepts (default 300 s; 0 = no limit)",
    )
    add(
        "--chain-latency",
        type=float,
        default=float(env("CHAIN_LATENCY", "0.05") or 0.05),
        metavar="SECONDS",
        help="how long the simulated chain takes to open a bid session: parallel bidsessions of one key "
        "that arrive within it collide as on the gateway (default 0.05)",
    )
    add(
        "--enforce-https",
        action="store_true",
        default=_env_flag(environ, "ENFORCE_HTTPS"),
        help="answer plain HTTP to a non-local host with the gateway's 426, as the gateway did",
    )
    add(
        "--max-body-size",
        type=int,
        default=int(env("MAX_BODY_SIZE", "1048576") or 0),
        help="refuse request bodies over this many bytes with 413 (default 1 MiB; 0 = no limit)",
    )
    add(
        "--store",
        default=env("STORE"),
        metavar="URL",
        help="keep sessions in Redis (redis://HOST:PORT/N) so several workers and hosts act as one gateway",
    )
    add(
        "--workers",
        type=int,
        default=int(env("WORKERS", "1") or 1),
        help="worker processes (more than one needs --store)",
    )
    add(
        "--journal-size",
        type=int,
        default=int(env("JOURNAL_SIZE", "1000") or 1000),
        help="requests the admin journal keeps (default 1000)",
    )
    add(
        "--history-size",
        type=int,
        default=int(env("HISTORY_SIZE", "1000") or 1000),
        help="ended sessions the admin history keeps (default 1000)",
    )
    add("--log-level", default=env("LOG_LEVEL", "info"), choices=["critical", "error", "warning", "info", "debug"])
    return parser


def config_from_args(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """Flags win over environment variables, which win over defaults."""
    args = build_parser(environ).parse_args(list(argv))
    return Config(
        host=args.host,
        port=args.port,
        keys=tuple(args.keys),
        keys_file=args.keys_file,
        models_file=args.models_file,
        bids_file=args.bids_file,
        seed=None if args.seed is None else int(args.seed),
        accept_any_key=args.accept_any_key,
        revoked_keys_work=args.revoked_keys_work,
        admin=args.admin,
        admin_token=args.admin_token or None,
        self_check=SelfCheck(args.self_check),
        fallback_key_note=not args.no_fallback_note,
        min_session_duration=args.min_session_duration,
        chain_latency=args.chain_latency,
        enforce_https=args.enforce_https,
        max_body_size=args.max_body_size,
        journal_size=args.journal_size,
        history_size=args.history_size,
        store=args.store or None,
        workers=args.workers,
        log_level=args.log_level,
    )


LOOPBACK = ("127.", "localhost", "::1")


def problems(config: Config) -> list[str]:
    """Why the mock must refuse to start with this configuration (empty: it may start)."""
    found = []
    if config.admin and config.admin_token is None and not config.host.startswith(LOOPBACK):
        found.append(
            f"--admin on {config.host} (not loopback) needs --admin-token: anyone who reaches the port "
            "could reset state, add keys and move the clock"
        )
    if config.workers > 1 and config.store is None:
        found.append(f"--workers {config.workers} needs --store redis://...: each worker would keep its own sessions")
    if config.workers < 1 or config.max_body_size < 0:
        found.append("--workers must be at least 1 and --max-body-size at least 0")
    if not 0 <= config.chain_latency <= 60:
        found.append(f"--chain-latency must be between 0 and 60 seconds, got {config.chain_latency}")
    return found
