"""Writing the hub's frames straight to the server's connection: the frame bytes, and
finding the connection behind an ASGI send under daphne and uvicorn (and nowhere else)."""

from __future__ import annotations

import asyncio
import functools
import json
import socket

import pytest

from realtime import transports
from tests.realtime.test_hub import text_of


class SessionWrapper:
    """As Channels' session middleware wraps a server's send."""

    def __init__(self, real_send: object) -> None:
        self.real_send = real_send

    async def send(self, message: dict) -> None:
        raise AssertionError("never called")


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_text_frame_is_what_a_client_parses_back(size: int) -> None:
    text = json.dumps({"type": "batch", "messages": ["é" * (size // 4)]})
    assert text_of(transports.text_frame(text.encode())) == json.loads(text)


def test_daphne_connection_is_found_through_the_session_wrapper() -> None:
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol

    protocol = WebSocketProtocol()
    # What daphne hands each application: its reply handler, bound to the connection.
    send = functools.partial(Server.__new__(Server).handle_reply, protocol)
    writer = transports.writer_for(SessionWrapper(send).send)
    assert isinstance(writer, transports.DaphneWriter)
    assert writer.protocol is protocol
    assert writer.write(b"x") is False  # not open yet: nothing is written


@pytest.mark.asyncio
async def test_uvicorn_connection_is_found_through_the_session_wrapper() -> None:
    from uvicorn.config import Config
    from uvicorn.protocols.websockets.websockets_sansio_impl import (
        WebSocketsSansIOProtocol,
    )
    from uvicorn.server import ServerState

    config = Config(app=lambda scope, receive, send: None, ws="websockets-sansio")
    config.load()
    protocol = WebSocketsSansIOProtocol(
        config, ServerState(), {}, _loop=asyncio.get_running_loop()
    )
    writer = transports.writer_for(SessionWrapper(protocol.send).send)
    assert isinstance(writer, transports.UvicornWriter)
    assert writer.write(b"x") is False  # no handshake yet: nothing is written
    assert not writer.blocked
    protocol.pause_writing()
    assert writer.blocked


def test_other_sends_get_no_writer() -> None:
    async def send(message: dict) -> None:
        return None

    assert transports.writer_for(send) is None
    assert transports.writer_for(SessionWrapper(send).send) is None
    assert transports.writer_for(None) is None
    assert transports.writer_for(functools.partial(send)) is None


def test_daphne_writer_sends_straight_to_an_idle_socket_and_buffers_the_rest() -> None:
    near, far = socket.socketpair()
    near.setblocking(False)

    class Transport:  # the attributes of a Twisted TCP connection the writer reads
        connected, TLS, disconnecting, _writeDisconnected = 1, False, False, False
        dataBuffer, offset = b"", 0

        def __init__(self) -> None:
            self.socket = near
            self._tempDataBuffer: list[bytes] = []

        def write(self, data: bytes) -> None:
            self._tempDataBuffer.append(data)

    class Protocol:
        STATE_OPEN, state = 3, 3

        def __init__(self) -> None:
            self.transport = Transport()

    protocol = Protocol()
    writer = transports.DaphneWriter(protocol)
    assert writer.write(b"first") is True
    assert far.recv(100) == b"first"
    assert protocol.transport._tempDataBuffer == []
    # Once Twisted holds bytes of its own, new ones queue behind them.
    protocol.transport._tempDataBuffer.append(b"held")
    assert writer.write(b"second") is True
    assert protocol.transport._tempDataBuffer == [b"held", b"second"]
    protocol.state = 4  # closing: no more frames
    assert writer.write(b"third") is False
    near.close()
    far.close()
