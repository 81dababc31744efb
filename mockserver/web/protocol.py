"""uvicorn's HTTP protocol with two changes.

- A request it cannot parse (malformed, or a request line or headers beyond the parser's limits) is
  answered 400 in the gateway's JSON shape, not in plain text.
- The writes of one turn of the event loop leave in one send (`CoalescingTransport`): uvicorn writes an
  answer's head and its body separately, and on loopback each send costs the server a system call and
  the kernel's whole TCP path; the mock's answers are made in one turn, so each leaves in one send.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY = json.dumps({"detail": "Invalid HTTP request received."}).encode()
RESPONSE = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + BODY
)


class CoalescingTransport(asyncio.Transport):
    """A connection's transport whose writes are held until the loop's turn ends, then sent as one.

    Everything else is the wrapped transport's; closing sends what is held first, so nothing written
    is lost or reordered.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.transport = transport
        self.loop = loop
        self.held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.held:
            self.loop.call_soon(self.flush)
        self.held.append(bytes(data))

    def flush(self) -> None:
        """Send what is held, in one write."""
        if self.held:
            data = self.held[0] if len(self.held) == 1 else b"".join(self.held)
            self.held.clear()
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.held.clear()
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()  # what the old protocol wrote goes first (an upgrade's own answer)
        self.transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.transport.get_protocol()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + sum(map(len, self.held))


class JsonErrorsHttpTools(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)

    def send_400_response(self, msg: str) -> None:
        self.transport.write(RESPONSE)
        self.transport.close()


class JsonErrorsH11(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)

    def send_400_response(self, msg: str) -> None:
        self.transport.write(RESPONSE)
        self.transport.close()
