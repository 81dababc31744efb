"""The chat row: chat completions served by the mock, whole and streamed, and its first-chunk latency.

wrk drives `POST /api/v1/chat/completions` on one key (bench/mix.lua's `chat` mode): whole answers at
32 connections (requests/s), and SSE streams at 1 and 32 connections (chunk frames/s, counted in the
bodies). The first-chunk latency is measured here, over one keep-alive connection, one stream at a
time: from the request's last byte sent to the first `data: ` frame received, so it is the mock's own
latency, not a queue's.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.load import Run
from bench.run import KEYS, measure
from bench.servers import mock_server

CHAT_PATH = "/api/v1/chat/completions"
MODEL = "mistral-31-24b"
STREAMS = (1, 32)  # connections of the streamed cells
PLAIN_CONNECTIONS = 32


@dataclass(frozen=True)
class FirstChunk:
    streams: int
    p50_ms: float
    p99_ms: float
    whole_ms: float  # median time to the end of the stream


@dataclass
class Chat:
    cells: dict[str, Run] = dataclasses.field(default_factory=dict)  # "plain-32", "stream-1", "stream-32"
    first: FirstChunk | None = None


def chat_request(host: str, key: str, *, stream: bool) -> bytes:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "stream": stream}).encode()
    head = (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def first_chunk(url: str, key: str, streams: int = 200) -> FirstChunk:
    """`streams` streamed chat completions in turn on one connection: time to the first frame and to the end."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = chat_request(f"{host}:{port}", key, stream=True)
    firsts, wholes = [], []
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(streams):
            started = time.perf_counter()
            connection.sendall(request)
            received, first = b"", None
            while not received.endswith(b"0\r\n\r\n"):  # the chunked body's last chunk
                data = connection.recv(65536)
                if not data:
                    raise RuntimeError("bench: the mock closed the connection during a stream")
                received += data
                if first is None and b"data: " in received:
                    first = time.perf_counter() - started
            wholes.append(time.perf_counter() - started)
            if first is None or b" 200 OK" not in received.split(b"\r\n", 1)[0]:
                raise RuntimeError(f"bench: a chat stream did not answer 200 with frames: {received[:300]!r}")
            firsts.append(first)
    firsts.sort()
    return FirstChunk(
        streams,
        statistics.median(firsts) * 1000,
        firsts[max(0, round(len(firsts) * 0.99) - 1)] * 1000,
        statistics.median(wholes) * 1000,
    )


def chat_cells(wrk: str, seconds: float, warmup: float) -> Chat:
    """The mock (one worker, in memory, self-check and journal on) answering chat completions."""
    chat = Chat()
    key = KEYS[0]
    with mock_server(KEYS, name="mock-chat") as server:
        measure(server, wrk, PLAIN_CONNECTIONS, warmup, ("chat", key, "plain"))  # opens the key's session
        chat.first = first_chunk(server.url, key)
        chat.cells[f"plain-{PLAIN_CONNECTIONS}"] = measure(
            server, wrk, PLAIN_CONNECTIONS, seconds, ("chat", key, "plain")
        )
        for connections in STREAMS:
            chat.cells[f"stream-{connections}"] = measure(server, wrk, connections, seconds, ("chat", key, "stream"))
    return chat
