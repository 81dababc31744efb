"""`morpheus-contract verify FILE`: replay what an application's tests did to the mock against a gateway.

    morpheus-contract verify contract.json --base-url https://staging.example --junitxml reports/verify.xml

FILE is a contract recording (`pytest --morpheus-record FILE`, or a served mock's `--record FILE`). Each
recorded sequence (one per test) is replayed from clean keys (recorded `key1` is the first key given,
`key2` the second), closing what it opened, and every answer is judged (`contracts/judge.py`). A
sequence that needs what the target or the options do not give (the mock's admin API for its faults,
clock moves, automation settings or queued replies; more keys; chat without --allow-chat; room under
--max-sessions or --max-chats) is NOT VERIFIED, with the reason, and does not fail the run. Exit 0 when
every replayable sequence matched, 1 when one did not, 2 for a file or option it cannot use, 4 when the
target is not the gateway.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import requests

from contracts import options
from contracts.answers import AnswerError, expect_answer
from contracts.api import ADMIN, AUTOMATION, CHAT_OPERATIONS, CLOSE, FAULTS
from contracts.diff import HASH, Shapes
from contracts.judge import recorded, replayed
from contracts.options import switch, target_url
from contracts.runtime import Run
from contracts.safety import close_all
from contracts.settings import ENV, Settings, split_keys
from openapi import RecordingError, aliased_key, read_recording

PASSED, FAILED, NOT_VERIFIED = "passed", "FAILED", "NOT VERIFIED"
CHAT_IDS = frozenset(operation.operation_id for operation in CHAT_OPERATIONS)
SUITE_NAME = "morpheus-contract verify"


@dataclass(frozen=True)
class Outcome:
    name: str
    verdict: str
    detail: str = ""
    seconds: float = 0.0


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line that says where the options are listed."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} ({self.prog} --help lists the options)\n")


def parser() -> argparse.ArgumentParser:
    parse = _Parser(
        prog="morpheus-contract verify",
        description=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parse.add_argument
    add("file", type=Path, metavar="FILE", help="the contract recording")
    add("--base-url", metavar="URL", help=f"the target (env {ENV['base_url']}); none: the mock, in this process")
    add(
        "--api-key",
        action="append",
        default=[],
        dest="api_keys",
        metavar="KEY",
        help=f"a key of the target (env {ENV['api_keys']})",
    )
    add(
        "--max-sessions",
        metavar="N",
        help=f"cap on sessions opened (env {ENV['max_sessions']}; 20 against a URL)",
    )
    add("--rate-limit", metavar="R", help=f"requests per second (env {ENV['rate_limit']}; 20 against a URL)")
    add("--allow-chat", action="store_true", default=None, help=f"replay chat and embeddings (env {ENV['allow_chat']})")
    add("--max-chats", metavar="N", help=f"cap on chat and embeddings requests (env {ENV['max_chats']}; 30)")
    add("--junitxml", type=Path, metavar="FILE", help="write a JUnit XML report: one case per recorded test")
    return parse


def settings_of(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    """The options, each over its MORPHEUS_* variable, read and refused as the suite reads them."""
    base_url = args.base_url or None
    return Settings(
        base_url=target_url(base_url, "--base-url")
        or target_url(environ.get(ENV["base_url"]) or None, ENV["base_url"]),
        api_keys=tuple(args.api_keys) or split_keys(environ.get(ENV["api_keys"])),
        max_sessions=options.number(args, "max_sessions", environ),
        rate_limit=options.number(args, "rate_limit", environ),
        allow_chat=bool(args.allow_chat) or switch("allow_chat", environ),  # MORPHEUS_ALLOW_CHAT=0 is off
        max_chats=options.number(args, "max_chats", environ),
    )


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    try:
        recording = read_recording(args.file)
        settings = settings_of(args, dict(os.environ))
    except (RecordingError, pytest.UsageError) as error:
        print(f"morpheus-contract verify: {error}", file=sys.stderr)
        return 2
    if not settings.in_process and not settings.api_keys:
        print(
            "morpheus-contract verify: --base-url needs at least one --api-key (or MORPHEUS_API_KEYS)", file=sys.stderr
        )
        return 2
    from contracts.target import open_run  # the suite's own target, probe, client, ledger and chat meter

    try:
        run = open_run(settings)
    except pytest.UsageError as error:
        print(f"morpheus-contract verify: {error}", file=sys.stderr)
        return 4
    try:
        outcomes = [verify(run, sequence) for sequence in recording["sequences"]]
        problems = close_all(run.client, run.ledger, run.keys)
    finally:
        run.stop()
    print(report(outcomes, run, problems))
    if args.junitxml is not None:
        write_junit(args.junitxml, outcomes)
    return 1 if any(outcome.verdict == FAILED for outcome in outcomes) else 0


def verify(run: Run, sequence: dict[str, Any]) -> Outcome:
    """Replay one recorded sequence and judge each answer; NOT VERIFIED when it cannot be replayed here."""
    started = time.monotonic()
    name, steps = sequence["name"], sequence["steps"]
    reason = unverifiable(run, sequence)
    if reason:
        return Outcome(name, NOT_VERIFIED, reason)
    keys = run.keys[: sequence["keys"]]
    restore = [_automation(run, key) for key in keys] if run.controls_faults else []
    try:
        for key in keys:
            _clean(run, key)
        detail = _replay(run, keys, steps)
    except (AnswerError, requests.RequestException) as error:
        detail = f"cleaning the keys before the first step: {_first_line(error)}"
    closing = _close(run, keys, restore)
    detail = detail or (f"closing what it opened: {closing[0]}" if closing else "")
    return Outcome(name, FAILED if detail else PASSED, detail, time.monotonic() - started)


def _close(run: Run, keys: Sequence[str], restore: Sequence[dict[str, Any]]) -> list[str]:
    """Close the keys' sessions and put back the automation settings the sequence found; the problems."""
    problems = []
    for key in keys:
        try:
            expect_answer(CLOSE, run.client.post(CLOSE.path, key=key))
        except (AnswerError, requests.RequestException) as error:
            problems.append(_first_line(error))
    for key, setting in zip(keys, restore, strict=False):
        run.client.put(_admin_path(AUTOMATION.path, key), json=setting)
    return problems


def _first_line(error: Exception) -> str:
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"


def unverifiable(run: Run, sequence: dict[str, Any]) -> str:
    """Why this target and these options cannot replay the sequence ('' when they can)."""
    steps = sequence["steps"]
    controls = [(number, step["control"]) for number, step in enumerate(steps, 1) if "control" in step]
    if controls and not run.controls_faults:
        number, control = controls[0]
        return f"needs the admin API: step {number} is the mock-only control {control['operation']}"
    if sequence["keys"] > len(run.keys):
        return f"needs {sequence['keys']} keys, the target was given {len(run.keys)}: add --api-key"
    chats = sum(1 for step in steps if step.get("operation") in CHAT_IDS)
    if chats and not run.settings.chat_allowed:
        return f"needs --allow-chat: {chats} chat or embeddings request(s)"
    if chats and not run.chats.room(chats):
        return f"--max-chats ({run.chats.cap}) leaves no room for its {chats} chat or embeddings request(s)"
    sessions = len(_sessions(step["answer"].get("body") for step in steps if "answer" in step))
    if not run.ledger.may_open(None, sessions):
        return f"--max-sessions ({run.ledger.cap}) leaves no room for the {sessions} session(s) it opens"
    return ""


def _replay(run: Run, keys: Sequence[str], steps: Sequence[dict[str, Any]]) -> str:
    """Send the steps in order; the first answer that differs, described (empty: every one matched)."""
    mine, theirs = Shapes(), Shapes()
    for number, step in enumerate(steps, 1):
        if "control" in step:
            answered = _control(run, keys, step["control"])
            if not 200 <= answered.status_code < 300:
                return f"step {number}: the admin API refused {step['control']['operation']}: {answered.status_code}"
            continue
        operation, request = step.get("operation"), step["request"]
        try:
            response = _send(run, keys, request)
        except requests.RequestException as error:
            return f"step {number}: {request['method']} {request['path']}: no answer ({type(error).__name__})"
        for session_id in _sessions([_json(response)]):
            run.ledger.count(session_id)
        expected = recorded(operation, step["answer"], mine)
        got, problems = replayed(operation, response, keys, theirs)
        if got != expected or problems:
            lines = [
                f"step {number}: {request['method']} {request['path']} ({operation or 'not in the spec'})",
                f"  recorded: {expected}",
                f"  got:      {got}",
                *(f"  breaks the spec: {problem}" for problem in problems[:3]),
                f"  replay:   {run.client.log[-1].rsplit('    # ->', 1)[0]}",
            ]
            return "\n".join(lines)
    return ""


def _send(run: Run, keys: Sequence[str], request: dict[str, Any]) -> requests.Response:
    headers = dict(request.get("headers", {}))
    if request.get("authorization") is not None:
        headers["Authorization"] = _unaliased(request["authorization"], keys)
    if "content_type" in request:
        headers["Content-Type"] = request["content_type"]
    data = json.dumps(request["body"]).encode() if "body" in request else request.get("text", "").encode() or None
    query = f"?{request['query']}" if request.get("query") else ""
    url = f"{run.client.base_url}{request['path']}{query}"
    return run.client.session.request(request["method"], url, data=data, headers=headers)


def _unaliased(authorization: str, keys: Sequence[str]) -> str:
    """`Bearer key1` -> `Bearer <the first key>`; anything else as recorded."""
    scheme, _, value = authorization.rpartition(" ")
    key = aliased_key(value, keys)
    return authorization if key is None else f"{scheme} {key}".lstrip()


def _control(run: Run, keys: Sequence[str], control: dict[str, Any]) -> requests.Response:
    """A mock-only control, sent to the target's admin API with each alias back to its key's prefix."""
    path = re.sub(r"key[1-9][0-9]*", lambda match: _prefix_of(match[0], keys), control["path"])
    query = re.sub(r"(?<==)key[1-9][0-9]*", lambda match: _prefix_of(match[0], keys), control.get("query", ""))
    body = control.get("body")
    if isinstance(body, dict) and isinstance(body.get("key"), str):
        body = {**body, "key": _prefix_of(body["key"], keys)}
    url = f"{run.client.base_url}{path}{'?' + query if query else ''}"
    return run.client.session.request(control["method"], url, json=body)


def _prefix_of(name: str, keys: Sequence[str]) -> str:
    key = aliased_key(name, keys)
    return name if key is None else key[:9]


def _clean(run: Run, key: str) -> None:
    """The key as a fresh test's: no session (closed); on a mock also no fault, reply or ended session."""
    run.fresh(key)
    if run.controls_faults:
        run.forget(key)
        run.client.delete(FAULTS.path)  # a fault armed for every key too
        run.client.delete(ADMIN.operation("clear_replies").path)


def _automation(run: Run, key: str) -> dict[str, Any]:
    setting = run.client.get(_admin_path(AUTOMATION.path, key)).json()
    return {"enabled": setting["enabled"], "duration": setting["duration"]}


def _admin_path(template: str, key: str) -> str:
    return template.replace("{prefix}", key[:9])


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _sessions(bodies: Any) -> set[str]:
    """The session ids these bodies name (what a sequence opens, at most)."""
    return {
        body["session_id"]
        for body in bodies
        if isinstance(body, dict) and isinstance(body.get("session_id"), str) and HASH.match(body["session_id"])
    }


def report(outcomes: Sequence[Outcome], run: Run, problems: Sequence[str]) -> str:
    target = "the in-process mock" if run.settings.in_process else run.base_url
    lines = [f"Verifying {len(outcomes)} recorded test(s) against {target}"]
    for outcome in outcomes:
        reason = f" ({outcome.detail})" if outcome.verdict == NOT_VERIFIED else ""
        lines.append(f"  {outcome.verdict:12} {outcome.name}{reason}")
        if outcome.verdict == FAILED:
            lines += [f"      {line}" for line in outcome.detail.splitlines()]
    counts = {verdict: sum(1 for o in outcomes if o.verdict == verdict) for verdict in (PASSED, FAILED, NOT_VERIFIED)}
    lines.append(
        f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[NOT_VERIFIED]} not verified; "
        f"{len(run.ledger.opened)} session(s) opened (cap {run.ledger.cap or 'none'}), "
        f"{run.chats.sent} chat request(s), {run.client.sent} request(s)"
    )
    lines += [f"teardown: {problem}" for problem in problems]
    return "\n".join(lines)


def write_junit(path: Path, outcomes: Sequence[Outcome]) -> None:
    """One test case per recorded test: a failure with the step, or skipped (NOT VERIFIED) with the reason."""
    failures = sum(1 for outcome in outcomes if outcome.verdict == FAILED)
    skipped = sum(1 for outcome in outcomes if outcome.verdict == NOT_VERIFIED)
    suite = ET.Element(
        "testsuite",
        name=SUITE_NAME,
        tests=str(len(outcomes)),
        failures=str(failures),
        skipped=str(skipped),
        errors="0",
    )
    for outcome in outcomes:
        case = ET.SubElement(suite, "testcase", classname=SUITE_NAME, name=outcome.name, time=f"{outcome.seconds:.3f}")
        if outcome.verdict == FAILED:
            ET.SubElement(case, "failure", message=outcome.detail.splitlines()[0]).text = outcome.detail
        elif outcome.verdict == NOT_VERIFIED:
            ET.SubElement(case, "skipped", message=f"NOT VERIFIED ({outcome.detail})")
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
