"""The HTTP client every contract request goes through: rate limit, 429 Retry-After, a request log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from contracts.redact import curl

MAX_RETRY_AFTER = 60.0
RETRIES_ON_429 = 3


class RateLimiter:
    """At most `per_second` requests a second across threads (None: no limit)."""

    def __init__(self, per_second: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 0.0 if not per_second else 1.0 / per_second
        self.clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def delay(self) -> float:
        """How long the caller must wait before its request (and reserve its slot)."""
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + self.interval
        return start - now


def retry_after(response: requests.Response) -> float:
    """Seconds a 429 asks to wait (Retry-After in seconds; 1 s when absent or unreadable), capped."""
    try:
        seconds = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class GatewaySession(requests.Session):
    """A requests.Session that waits its turn, honours 429 Retry-After, and tells listeners every response.

    `paced=False` on one request skips the rate limiter's turn (an R8 burst, bounded by --concurrency,
    must reach the target at once); a 429 is still honoured.
    """

    def __init__(self, limiter: RateLimiter, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        self.limiter = limiter
        self.sleep = sleep
        self.listeners: list[Callable[[requests.Response], None]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        paced = kwargs.pop("paced", True)
        for _ in range(RETRIES_ON_429):
            if paced:
                self.sleep(self.limiter.delay())
            response = super().request(method, url, *args, **kwargs)
            if response.status_code != 429:
                break
            self.sleep(retry_after(response))
        for listener in self.listeners:
            listener(response)
        return response


class Client:
    """Requests to one target with one session; `log` keeps the curl of every request since `reset_log`."""

    def __init__(self, base_url: str, keys: Iterable[str], per_second: float | None, *, connections: int = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.keys = tuple(keys)
        self.session = GatewaySession(RateLimiter(per_second))
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(10, connections))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.listeners.append(self._record)
        self.log: list[str] = []
        self.sent = 0
        self._lock = threading.Lock()

    def _record(self, response: requests.Response) -> None:
        request = response.request
        body = request.body.encode() if isinstance(request.body, str) else request.body
        line = curl(str(request.method), str(request.url), dict(request.headers), body, self.keys)
        with self._lock:
            self.sent += 1
            self.log.append(f"{line}    # -> {response.status_code}")

    def reset_log(self) -> None:
        with self._lock:
            self.log = []

    def post(
        self,
        path: str,
        *,
        key: str | None = None,
        params: Any = None,
        json: Any = None,
        headers: Any = None,
        paced: bool = True,
    ) -> requests.Response:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        return self.session.request(
            "POST", f"{self.base_url}{path}", params=params, json=json, headers=sent, paced=paced
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request("GET", f"{self.base_url}{path}", **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(f"{self.base_url}{path}", **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.put(f"{self.base_url}{path}", **kwargs)
