"""Content parts of a chat message: the gateway's pydantic class names and defaults, byte for byte in 422s.

The gateway's `ContentPart` at v1.14.0 (`src/api/v1/chat/chat_models.py`) is
`Union[ContentPartText, ContentPartImageUrl, ContentPartInputAudio, ContentPartFile]`, each with a
`type: str` that defaults to its own kind; the expected bodies below are what FastAPI 0.110.3 with
pydantic 2.11.7 answered for those models.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.chat.helpers import CHAT_PATH
from tests.conftest import KEY
from tests.web.helpers import auth

PARTS = "list[union[ContentPartText,ContentPartImageUrl,ContentPartInputAudio,ContentPartFile]]"
WHERE = ["body", "messages", 0, "content"]


def _missing(branch: str, field: str, given: object) -> dict[str, Any]:
    return {"type": "missing", "loc": [*WHERE, PARTS, 0, branch, field], "msg": "Field required", "input": given}


def _not_a_string(given: object) -> dict[str, Any]:
    return {"type": "string_type", "loc": [*WHERE, "str"], "msg": "Input should be a valid string", "input": given}


def _send(client: TestClient, part: object) -> Any:
    body = {"messages": [{"role": "user", "content": [part]}]}
    return client.post(CHAT_PATH, json=body, headers=auth(KEY))


def test_a_part_that_fits_no_branch_names_the_gateways_classes(client: TestClient) -> None:
    part = {"type": "text"}
    response = _send(client, part)
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            _not_a_string([part]),
            _missing("ContentPartText", "text", part),
            _missing("ContentPartImageUrl", "image_url", part),
            _missing("ContentPartInputAudio", "input_audio", part),
            _missing("ContentPartFile", "file", part),
        ]
    }


def test_a_branch_whose_field_has_the_wrong_type_reports_its_own_model(client: TestClient) -> None:
    part = {"type": "image_url", "image_url": 5}
    wrong = {
        "type": "model_attributes_type",  # FastAPI validates with from_attributes=True
        "loc": [*WHERE, PARTS, 0, "ContentPartImageUrl", "image_url"],
        "msg": "Input should be a valid dictionary or object to extract fields from",
        "input": 5,
    }
    assert _send(client, part).json()["detail"][2] == wrong


@pytest.mark.parametrize(
    "part",
    [
        {"text": "no type: the text branch's default"},
        {"image_url": {"url": "https://example.com/a.png"}},
        {"input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"file": {}},
        {"type": "anything", "text": "type is any string"},
    ],
)
def test_type_defaults_to_the_branch_so_a_part_without_it_is_accepted(client: TestClient, part: object) -> None:
    assert _send(client, part).status_code == 200
