"""The target of a run: started (the mock, in-process) or reached, probed, and asked what it lets us control.

The suite's plugin (`contracts/conftest.py`) opens its run here at configure time; `morpheus-contract
verify` opens its own the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from contracts.api import CLOCK, FAULTS, LIST_MODELS, PING
from contracts.chat_budget import ChatMeter
from contracts.client import Client
from contracts.ids import SessionIds
from contracts.redact import excerpt, redact
from contracts.runtime import Run, read_models
from contracts.safety import Ledger
from contracts.settings import MOCK_KEYS, Settings
from openapi import UndocumentedResponse, Validators, load_spec


def open_run(settings: Settings, *, may_move_time: bool = True) -> Run:
    """Start (or reach) the target, check that it serves the session API, and learn what it lets us control."""
    stop: Callable[[], None] = lambda: None  # noqa: E731
    keys, base_url = settings.api_keys, settings.base_url or ""
    if settings.in_process:
        from contracts.inprocess import start_mock  # the mock is imported only when it is the target

        server = start_mock(MOCK_KEYS)
        keys, base_url, stop = MOCK_KEYS, server.url, server.stop
    client = Client(base_url, keys, settings.requests_per_second)
    ledger, chats, ids = Ledger(settings.session_cap), ChatMeter(settings.chat_cap), SessionIds()
    client.session.listeners += [ledger.observe, chats.observe, ids.observe]
    try:
        models = probe(client, keys)
        clock = _admin_json(client, CLOCK.path)
        controls_faults = _admin_json(client, FAULTS.path) is not None
    except BaseException:
        stop()
        raise
    controls_time = clock is not None and may_move_time
    run = Run(
        settings, base_url, keys, client, ledger, controls_time, controls_faults, models, stop, chats=chats, ids=ids
    )
    run.clock_at_start = float(clock["now"]) if controls_time else None
    if clock is not None and not may_move_time:
        run.time_note = "parallel workers share the target's clock (run without -n to check R6)"
    return run


def probe(client: Client, keys: tuple[str, ...]) -> dict[str, str]:
    """Fail fast, with one clear line, when the target is not the session API or refuses one of the keys;
    return its models. Every key is tried before the first test, so a wrong second key is not blamed on the
    gateway by the rules that use it."""
    url = f"{client.base_url}{PING.path}"
    response = _ping(client, keys[0])
    if response.status_code == 404:
        raise pytest.UsageError(
            f"the target has no session API: POST {url} answered 404 {excerpt(response.text)}. "
            "Check --base-url (the gateway removed /api/v1/session/* in v1.15.0)."
        )
    _gateway_shaped(PING.operation_id, f"POST {url}", response)
    for position, key in enumerate(keys, start=1):
        answer = response if position == 1 else _ping(client, key)
        if answer.status_code == 401:
            raise pytest.UsageError(
                f"the target refused API key {position} of {len(keys)} ({key[:9]}…): {excerpt(answer.text)}. "
                "Check --api-key / MORPHEUS_API_KEYS."
            )
    models = client.get(LIST_MODELS.path)
    _gateway_shaped(LIST_MODELS.operation_id, f"GET {client.base_url}{LIST_MODELS.path}", models)
    return read_models(models.json())


def _ping(client: Client, key: str) -> requests.Response:
    try:
        return client.post(PING.path, key=key)
    except requests.RequestException as error:
        raise pytest.UsageError(
            f"cannot reach the target at {client.base_url}: {type(error).__name__}: {redact(str(error), [key])}"
        ) from None


def _gateway_shaped(operation_id: str, request: str, response: requests.Response) -> None:
    """A status the spec documents for the operation, and a JSON body; else the target is not the gateway.
    (A JSON body under another content type is the gateway's mistake for the tests to report, not this.)"""
    documented = True
    try:
        Validators(load_spec()).response_key(operation_id, response.status_code)
    except UndocumentedResponse:
        documented = False
    media_type = response.headers.get("content-type", "")
    if documented and _is_json(response):
        return
    raise pytest.UsageError(
        f"the target does not answer like the gateway: {request} answered {response.status_code} "
        f"{media_type or 'without a content type'} {excerpt(response.text)}. Check --base-url."
    )


def _is_json(response: requests.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True


def _admin_json(client: Client, path: str) -> Any:
    """The body of a GET on the mock's admin API, or None when the target has no such control."""
    response = client.get(path)
    if response.status_code != 200 or not response.headers.get("content-type", "").startswith("application/json"):
        return None
    return response.json()
