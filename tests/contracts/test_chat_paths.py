"""The chat scenarios (contracts/test_chat_rules.py) on the paths a URL target takes them, in-process: no
admin API (C3 checks the one way the target answers, C6 cannot move the clock), automation off with no
admin API to say so, a session cap that leaves no room for the scenarios' extra modelsessions, a gateway
that refuses an unknown session before streaming, and a target that lists one model."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Scope

from contracts import test_chat_rules as scenarios
from contracts.budget import Budget
from contracts.runtime import Run
from contracts.settings import MOCK_KEYS, Settings
from contracts.target import open_run
from mockserver.config import Config
from mockserver.web.app import create_app
from tests.contracts.test_rule_paths import MODEL, _lists
from tests.gallery.variants import _around_chat
from tests.live import LiveServer


@contextmanager
def _chatting(app: ASGIApp, max_sessions: int = 0) -> Iterator[tuple[Run, list[str]]]:
    """A run with chat allowed against `app` on a loopback port, and the rules its checks record."""
    with LiveServer(app) as server:
        settings = Settings(
            base_url=server.url, api_keys=MOCK_KEYS, rate_limit=0, max_sessions=max_sessions, allow_chat=True
        )
        yield open_run(settings), []


def _chat(run: Run, left: scenarios.Left | None = None) -> scenarios.Chat:
    return scenarios.Chat(run, Budget(run, "test"), left or scenarios.Left())


def _plain_mock(**config: Any) -> Starlette:
    return create_app(Config(keys=MOCK_KEYS, **config))


def test_without_the_admin_api_c3_c2_and_c6_check_what_the_target_lets_them() -> None:
    with _chatting(_plain_mock()) as (run, checked):
        assert not run.controls_faults
        assert not run.controls_time
        left = scenarios.Left()  # each scenario starts from what the previous one left, as in a run
        scenarios.test_c3_chat_opens_a_session_only_when_automation_allows(run, _chat(run, left), checked.append)
        scenarios.test_c2_chat_on_another_model_replaces_the_session(run, _chat(run, left), checked.append)
        assert left.model == scenarios._models(run)[1]  # C2 left the second model's session: C6 opens one on the first
        scenarios.test_c6_nothing_is_closed_or_extended_after_chat(run, _chat(run, left), checked.append)
    assert checked == ["C3", "C2", "C6"]


def test_a_403_for_automation_with_no_admin_api_to_say_so_is_c3s_refusal() -> None:
    with _chatting(_plain_mock(automation=False)) as (run, checked):
        scenarios.test_c3_chat_opens_a_session_only_when_automation_allows(run, _chat(run), checked.append)
        assert scenarios.Chat(run, Budget(run, "t"), scenarios.Left()).ping("C3") == ("no_session", None)
    assert checked == ["C3"]


def test_a_cap_with_no_room_left_skips_only_the_scenarios_extra_modelsessions() -> None:
    """C2 fills a cap of 2 (its modelsession, its chat's new session), C1 a cap of 1: neither sends the
    modelsession that would check the shared session, and both still check their own rule."""
    with _chatting(_plain_mock(), max_sessions=2) as (run, checked):
        scenarios.test_c2_chat_on_another_model_replaces_the_session(run, _chat(run), checked.append)
        assert len(run.ledger.opened) == 2
    with _chatting(_plain_mock(), max_sessions=1) as (run, more):
        scenarios.test_c1_chat_reuses_the_keys_session(run, _chat(run), more.append)
        assert len(run.ledger.opened) == 1
    assert (checked, more) == (["C2"], ["C1"])


async def _unstreamed_on_the_unknown_session(app: ASGIApp, scope: Scope, data: dict[str, Any]) -> dict[str, Any]:
    """A streamed chat on the unknown session is refused before it streams: sent on as a plain chat, so
    the answer is the gateway's own JSON error."""
    if data.get("session_id") == scenarios.UNKNOWN_SESSION:
        return {name: value for name, value in data.items() if name != "stream"}
    return data


def test_a_stream_on_an_unknown_session_may_be_refused_before_it_streams_c5() -> None:
    with _chatting(_around_chat(before=_unstreamed_on_the_unknown_session)(_plain_mock())) as (run, checked):
        scenarios.test_c5_a_body_session_id_is_used_as_given(run, _chat(run), checked.append)
    assert checked == ["C5"]


def test_one_listed_model_skips_the_chat_rules_saying_why() -> None:
    listed = {"id": MODEL, "blockchainID": "0x" + "8e" * 32, "created": 1741219200, "tags": ["LLM"]}
    with _chatting(_lists([listed], _plain_mock())) as (run, _):
        budget = Budget(run, "test")
        with pytest.raises(pytest.skip.Exception, match=r"^the target lists 1 model\(s\): the chat rules need 2$"):
            inspect.unwrap(scenarios.chat)(run, budget, scenarios.Left())
