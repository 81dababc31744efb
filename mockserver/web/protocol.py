"""uvicorn's HTTP protocol with one change: a request it cannot parse (malformed, or a request line or
headers beyond the parser's limits) is answered 400 in the gateway's JSON shape, not in plain text."""

from __future__ import annotations

import json

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY = json.dumps({"detail": "Invalid HTTP request received."}).encode()
RESPONSE = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + BODY
)


class JsonErrorsHttpTools(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        self.transport.write(RESPONSE)
        self.transport.close()


class JsonErrorsH11(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        self.transport.write(RESPONSE)
        self.transport.close()
