"""Requests of the chat tests: chat completions, embeddings, the key's state and the admin controls."""

from __future__ import annotations

from typing import Any

import httpx2
from starlette.testclient import TestClient

from tests.conftest import KEY
from tests.web.helpers import auth

CHAT_PATH, EMBEDDINGS_PATH = "/api/v1/chat/completions", "/api/v1/embeddings"
PREFIX = "sk-AbC123"
HELLO = [{"role": "user", "content": "hello"}]
UNKNOWN_SESSION = "0x" + "ab" * 32


def chat(client: TestClient, model: str | None = "mistral-31-24b", key: str = KEY, **body: Any) -> httpx2.Response:
    request: dict[str, Any] = {"messages": HELLO, **body}
    if model is not None:
        request["model"] = model
    return client.post(CHAT_PATH, json=request, headers=auth(key))


def embed(
    client: TestClient, model: str | None = "text-embedding-bge-m3", key: str = KEY, **body: Any
) -> httpx2.Response:
    request: dict[str, Any] = {"input": "hello", **body}
    if model is not None:
        request["model"] = model
    return client.post(EMBEDDINGS_PATH, json=request, headers=auth(key))


def session(client: TestClient, prefix: str = PREFIX) -> dict[str, Any] | None:
    found: dict[str, Any] | None = client.get(f"/__admin/state/{prefix}").json()["session"]
    return found


def session_id(client: TestClient, prefix: str = PREFIX) -> str | None:
    found = session(client, prefix)
    return None if found is None else str(found["session_id"])


def automation(client: TestClient, prefix: str = PREFIX, **setting: Any) -> httpx2.Response:
    return client.put(f"/__admin/keys/{prefix}/automation", json=setting)


def queue(client: TestClient, **reply: Any) -> httpx2.Response:
    return client.post("/__admin/replies", json=reply)


def frames(text: str) -> list[str]:
    """The data of each SSE frame of a stream body."""
    return [part.removeprefix("data: ") for part in text.split("\n\n") if part]
