"""The HTTP client every contract request goes through: rate limit, 429 Retry-After, a request log."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict

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
    """A requests.Session that waits its turn, honours 429 Retry-After, and tells listeners every response."""

    def __init__(self, limiter: RateLimiter, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        self.limiter = limiter
        self.sleep = sleep
        self.listeners: list[Callable[[requests.Response], None]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        for _ in range(RETRIES_ON_429):
            self.sleep(self.limiter.delay())
            response = super().request(method, url, *args, **kwargs)
            if response.status_code != 429:
                break
            self.sleep(retry_after(response))
        for listener in self.listeners:
            listener(response)
        return response


def _connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=30)
    connection.connect()
    return connection


def _wire(prepared: requests.PreparedRequest) -> bytes:
    """The request as it goes on the wire (HTTP/1.1; the body uncompressed both ways)."""
    parts = urlsplit(str(prepared.url))
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    body = prepared.body.encode() if isinstance(prepared.body, str) else (prepared.body or b"")
    headers = {"Host": parts.netloc, **prepared.headers, "Accept-Encoding": "identity"}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"{prepared.method} {target} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + body


def _answer(connection: http.client.HTTPConnection, prepared: requests.PreparedRequest) -> requests.Response:
    """Read the answer to the request written on `connection`, as a requests.Response."""
    answer = http.client.HTTPResponse(connection.sock, method=str(prepared.method))
    answer.begin()
    response = requests.Response()
    response.status_code, response.reason = answer.status, answer.reason
    response.headers = CaseInsensitiveDict(answer.getheaders())
    response._content = answer.read()
    response.url, response.request, response.encoding = str(prepared.url), prepared, "utf-8"
    return response


class Client:
    """Requests to one target with one session; `log` keeps the curl of every request since `reset_log`."""

    def __init__(self, base_url: str, keys: Iterable[str], per_second: float | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.keys = tuple(keys)
        self.session = GatewaySession(RateLimiter(per_second))
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
    ) -> requests.Response:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        return self.session.request("POST", f"{self.base_url}{path}", params=params, json=json, headers=sent)

    def burst(self, path: str, *, key: str, size: int, params: Any = None, json: Any = None) -> list[requests.Response]:
        """`size` identical POSTs completed at the same moment, past the rate limiter (a burst is bounded
        by its size). Each connection is opened (TLS included) and its request written but for the last
        byte; then one loop writes every last byte, so the requests become whole within microseconds of
        each other, however busy this machine is (threads released by a barrier can be milliseconds
        apart). Listeners see every answer."""
        prepared = self.session.prepare_request(
            requests.Request(
                "POST", f"{self.base_url}{path}", params=params, json=json, headers={"Authorization": f"Bearer {key}"}
            )
        )
        wire = _wire(prepared)
        connections = [_connect(str(prepared.url)) for _ in range(size)]
        try:
            for connection in connections:
                connection.send(wire[:-1])
            for connection in connections:
                connection.send(wire[-1:])
            answers = [_answer(connection, prepared) for connection in connections]
        finally:
            for connection in connections:
                connection.close()
        for answer in answers:
            for listener in self.session.listeners:
                listener(answer)
        return answers

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request("GET", f"{self.base_url}{path}", **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(f"{self.base_url}{path}", **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.put(f"{self.base_url}{path}", **kwargs)
