"""What chat costs a run: chat completions and embeddings requests counted against a cap (`--max-chats`)."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import requests

from contracts.api import CHAT_OPERATIONS

NOT_ALLOWED = "--allow-chat not given"  # why chat rules go unchecked against a URL by default (not a failure)
CHAT_PATHS = frozenset(operation.path for operation in CHAT_OPERATIONS)


class ChatMeter:
    """Chat and embeddings requests the run sent (each may cost tokens), against a cap (None: none)."""

    def __init__(self, cap: int | None = None) -> None:
        self.cap = cap
        self.sent = 0
        self._lock = threading.Lock()

    def observe(self, response: requests.Response) -> None:
        """Listener for every response: count those to the chat paths."""
        if urlsplit(str(response.request.url)).path in CHAT_PATHS:
            with self._lock:
                self.sent += 1

    def room(self, wanted: int = 1) -> bool:
        """Whether `wanted` more chat requests stay within the cap."""
        with self._lock:
            return self.cap is None or self.sent + wanted <= self.cap
