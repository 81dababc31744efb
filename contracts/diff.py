"""Differential run: the same seeded sequence of requests to two targets, compared step by step.

    MORPHEUS_API_KEYS="sk-..." python -m contracts.diff --a mock --b https://staging.example
    make diff A=mock B=https://staging.example API_KEY="sk-... sk-..."
    make diff A=mock B=mock

Statuses, content types and bodies are compared; session ids and hashes by shape and by identity
pattern (each target's ids are renamed S1, S2, ... in order of first appearance), so "the same session
came back" (R1) and "a new one" (R2) differ between targets while the ids themselves never do.
A `mock` side compares like with like: it is started with keys that have the other side's prefixes
(bodies echo `api_key_prefix`), so a faithful target shows no difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.api import BID_SESSION, CLOSE, LIST_MODELS, MODEL_SESSION, PING
from contracts.client import Client
from contracts.runtime import DEFAULT_MODEL_NAME
from contracts.settings import ENV, MOCK_KEYS, split_keys

HASH = re.compile(r"^0x[0-9a-f]{64}$")
PREFIX = re.compile(r"sk-[A-Za-z0-9]{6}")
B_KEYS_ENV = "MORPHEUS_B_API_KEYS"
BODY = {"sessionDuration": 3600, "directPayment": False, "failover": False}
ACTIONS = (
    "model",
    "model",
    "model",
    "bid",
    "ping",
    "ping",
    "close",
    "no_key",
    "jwt",
    "bad_json",
    "bad_body",
    "unknown_model",
)


@dataclass(frozen=True)
class Step:
    index: int
    action: str
    key: int  # which of the run's keys (0 or 1)
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    auth: str = "key"  # key, none or jwt

    def describe(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"#{self.index} {self.action:13} key{self.key + 1} POST {self.path}{'?' + query if query else ''}"


def sequence(seed: int, steps: int, models: Sequence[str], keys: int) -> list[Step]:
    """The seeded sequence both targets receive."""
    chooser = random.Random(seed)
    return [_step(index, chooser.choice(ACTIONS), chooser.randrange(keys), chooser, models) for index in range(steps)]


def _step(index: int, action: str, key: int, chooser: random.Random, models: Sequence[str]) -> Step:
    body = json.dumps(BODY).encode()
    if action == "model":
        return Step(index, action, key, MODEL_SESSION.path, {"model_id": chooser.choice(models)}, body)
    if action == "unknown_model":
        return Step(index, action, key, MODEL_SESSION.path, {"model_id": "no-such-model"}, body)
    if action == "bid":
        return Step(index, action, key, BID_SESSION.path, {"bid_id": f"0x{chooser.randrange(4):064x}"}, body)
    if action in ("ping", "close"):
        return Step(index, action, key, (PING if action == "ping" else CLOSE).path)
    if action == "bad_json":
        return Step(index, action, key, MODEL_SESSION.path, {"model_id": models[0]}, b"{bad")
    if action == "bad_body":
        return Step(index, action, key, BID_SESSION.path, {"bid_id": "0x01"}, b'{"sessionDuration": "abc"}')
    return Step(index, action, key, PING.path, auth="none" if action == "no_key" else "jwt")


class Shapes:
    """Renames one target's ids in order of first appearance, so two targets' bodies can be compared."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def of(self, value: Any) -> Any:
        if isinstance(value, str) and HASH.match(value):
            return self.names.setdefault(value, f"S{len(self.names) + 1}")
        if isinstance(value, dict):
            return {name: self.of(item) for name, item in value.items()}
        if isinstance(value, list):
            return [self.of(item) for item in value]
        return value


@dataclass
class Side:
    client: Client
    keys: tuple[str, ...]
    shapes: Shapes = field(default_factory=Shapes)

    def send(self, step: Step) -> tuple[int, str, Any]:
        headers = {"Content-Type": "application/json"} if step.body is not None else {}
        if step.auth == "key":
            headers["Authorization"] = f"Bearer {self.keys[step.key]}"
        elif step.auth == "jwt":
            headers["Authorization"] = "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
        url = f"{self.client.base_url}{step.path}"
        response = self.client.session.post(url, params=step.params, data=step.body, headers=headers)
        try:
            body: Any = self.shapes.of(response.json())
        except ValueError:
            body = response.text[:200]
        return response.status_code, response.headers.get("content-type", ""), body


@dataclass(frozen=True)
class Difference:
    step: Step
    a: tuple[int, str, Any]
    b: tuple[int, str, Any]

    def __str__(self) -> str:
        answers = (
            f"    {side}: {status} {kind} {body}" for side, (status, kind, body) in (("A", self.a), ("B", self.b))
        )
        return "\n".join([self.step.describe(), *answers])


def run_diff(a: Side, b: Side, steps: Sequence[Step], report: Any = None) -> list[Difference]:
    """Send every step to both sides (both start with no session); return the steps whose answers differ."""
    for side in (a, b):
        for key in side.keys:
            side.client.post(CLOSE.path, key=key)
    differences = []
    for step in steps:
        answers = a.send(step), b.send(step)
        if answers[0] != answers[1]:
            differences.append(Difference(step, *answers))
        if report is not None:
            report(f"{step.describe():72} {'same' if answers[0] == answers[1] else 'DIFFERENT'}")
    return differences


def mirrored(keys: Sequence[str]) -> tuple[str, ...]:
    """Mock keys with the prefixes of `keys` (each with a secret of its own): the mock then answers with the
    same `api_key_prefix` as the target those keys belong to. No keys: the mock's own."""
    if not keys:
        return MOCK_KEYS
    wrong = [key[:9] for key in keys if not PREFIX.fullmatch(key[:9])]
    if wrong:
        raise SystemExit(f"cannot mirror key prefix(es) {', '.join(wrong)} on the mock: a prefix is sk- and 6 letters")
    return tuple(f"{key[:9]}.{hashlib.sha256(key.encode()).hexdigest()}" for key in keys)


def _side(url: str, keys: Sequence[str]) -> tuple[Side, Any]:
    """A side of the run: a URL with its `keys`, or (`mock`) an in-process mock mirroring `keys`' prefixes."""
    if url == "mock":
        from contracts.inprocess import start_mock  # a diff side may be the in-process mock

        own = mirrored(keys)
        server = start_mock(own)
        return Side(Client(server.url, own, None), own), server.stop
    return Side(Client(url, keys, None), tuple(keys)), lambda: None


def side_keys(args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A's keys and B's: options first, then the environment; B has A's unless given its own; a mock mirrors
    the other side's."""
    a_keys = tuple(args.api_key) or split_keys(os.environ.get(ENV["api_keys"]))
    b_keys = tuple(args.b_api_key) or split_keys(os.environ.get(B_KEYS_ENV)) or a_keys
    if args.a == "mock":
        a_keys = () if args.b == "mock" else b_keys
    if args.b == "mock":
        b_keys = a_keys
    for url, keys in ((args.a, a_keys), (args.b, b_keys)):
        if url != "mock" and not keys:
            raise SystemExit(f"{url}: give its API key(s): API_KEY=... (make), or --api-key / {ENV['api_keys']}")
    return a_keys, b_keys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.diff", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", required=True, help="a base URL, or 'mock' for an in-process mock")
    parser.add_argument("--b", required=True, help="a base URL, or 'mock'")
    parser.add_argument(
        "--api-key", action="append", default=[], help=f"key(s) for A, and B unless --b-api-key (env {ENV['api_keys']})"
    )
    parser.add_argument("--b-api-key", action="append", default=[], help=f"key(s) for B (env {B_KEYS_ENV})")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    a_keys, b_keys = side_keys(args)
    a, stop_a = _side(args.a, a_keys)
    b, stop_b = _side(args.b, b_keys)
    try:
        listed = a.client.get(LIST_MODELS.path).json().get("data", [])
        models = [model["id"] for model in listed][:3] or [DEFAULT_MODEL_NAME]
        keys = min(len(a.keys), len(b.keys))
        differences = run_diff(a, b, sequence(args.seed, args.steps, models, keys), report=print)
    finally:
        stop_a()
        stop_b()
    if not differences:
        print(f"no difference in {args.steps} steps (seed {args.seed})")
        return 0
    print(f"{len(differences)} differing step(s); the first:\n{differences[0]}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
