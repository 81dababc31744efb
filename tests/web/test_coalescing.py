"""The mock's transport: writes of one event-loop turn leave in one send, in order; the rest is the socket's own."""

from __future__ import annotations

import asyncio
from typing import Any

from mockserver.config import Config
from mockserver.web.app import create_app
from mockserver.web.protocol import CoalescingTransport, JsonErrorsHttpTools
from tests.conftest import KEY
from tests.live import LiveServer
from tests.served import send_raw


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.calls: list[str] = []
        self.protocol: asyncio.BaseProtocol = asyncio.Protocol()

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def close(self) -> None:
        self.calls.append("close")

    def abort(self) -> None:
        self.calls.append("abort")

    def is_closing(self) -> bool:
        return "close" in self.calls

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")

    def is_reading(self) -> bool:
        return "pause" not in self.calls

    def get_write_buffer_size(self) -> int:
        return 5


def test_the_writes_of_one_turn_leave_in_one_send_in_order() -> None:
    async def run() -> tuple[list[bytes], list[bytes]]:
        real = FakeTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(bytearray(b"{}"))
        during = list(real.sent)
        await asyncio.sleep(0)
        transport.write(b"next")
        await asyncio.sleep(0)
        return during, real.sent

    during, sent = asyncio.run(run())
    assert during == []
    assert sent == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"next"]


def test_closing_or_changing_protocol_sends_what_is_held_first_and_abort_drops_it() -> None:
    async def run() -> FakeTransport:
        real = FakeTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"answer")
        assert transport.get_write_buffer_size() == 5 + len(b"answer")
        upgraded = asyncio.Protocol()
        transport.set_protocol(upgraded)
        assert transport.get_protocol() is upgraded
        transport.write(b"last")
        transport.close()
        transport.write(b"dropped")
        transport.abort()
        await asyncio.sleep(0)
        return real

    real = asyncio.run(run())
    assert real.sent == [b"answer", b"last"]
    assert real.calls == ["close", "abort"]


def test_everything_else_is_the_wrapped_transports() -> None:
    real = FakeTransport()
    transport = CoalescingTransport(real, asyncio.new_event_loop())
    transport.pause_reading()
    assert not transport.is_reading()
    transport.resume_reading()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
    assert transport.get_extra_info("nothing", "default") == "default"
    assert not transport.is_closing()
    transport.loop.close()


def test_a_served_answer_arrives_whole() -> None:
    request = (
        b"POST /api/v1/session/pingsession HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        b"Authorization: Bearer " + KEY.encode() + b"\r\nConnection: close\r\n\r\n"
    )
    with LiveServer(create_app(Config(keys=(KEY,))), http=JsonErrorsHttpTools) as server:
        status, headers, body = send_raw(server.host, server.port, request)
    assert status == 200
    assert int(headers["content-length"]) == len(body)
    assert "x-process-time" in headers
