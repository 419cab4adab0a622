"""The server's own connection under a dashboard socket, for the hub's frames.

A hub frame is the same bytes for every socket: a text frame from server to
client is never masked (RFC 6455, 5.1), so its header and payload are built once
and the very same ``bytes`` are written to each connection. Through the ASGI
``send`` each socket would instead pay for Channels' send, its session wrapper,
the server's reply handling and the server's WebSocket framing, per frame (about
a tenth of a millisecond under daphne, most of the hub's time at 1,000 sockets).

Two servers let an application reach the connection behind ``send``:

- daphne hands each application ``functools.partial(server.handle_reply,
  protocol)``, the protocol being autobahn's; its ``transport`` is Twisted's.
- uvicorn's default WebSocket protocol (on the ``websockets`` package, sans-I/O)
  hands the protocol's bound ``send``; its ``transport`` is asyncio's.

Elsewhere (other servers, other uvicorn protocols, Channels' test communicator)
:func:`writer_for` finds nothing and the hub sends through ``send`` as before.
Either way the bytes on the wire are the same frame. A compressed connection
(permessage-deflate) may receive uncompressed messages (RFC 7692, 6), so these
frames need no per-socket compression either.
"""

from __future__ import annotations

import functools
import struct
from typing import Any, Protocol

#: Wrappers between a consumer's ``base_send`` and the server's (Channels' session
#: middleware keeps the one it wraps as ``real_send``).
MAX_WRAPPERS = 8
TEXT_FIN = 0x81


def text_frame(payload: bytes) -> bytes:
    """An unfragmented, unmasked RFC 6455 text frame holding ``payload``."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", TEXT_FIN, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", TEXT_FIN, 126, size)
    else:
        head = struct.pack("!BBQ", TEXT_FIN, 127, size)
    return head + payload


class Writer(Protocol):
    @property
    def blocked(self) -> bool:
        """The connection's write buffer is over its high-water mark."""

    def write(self, frame: bytes) -> bool:
        """Write a whole frame; False if the socket is no longer open for frames."""


class DaphneWriter:
    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.open_state = protocol.STATE_OPEN

    @property
    def blocked(self) -> bool:
        # Twisted pauses the connection's producer past its high-water mark.
        return bool(getattr(self.protocol.transport, "producerPaused", False))

    def write(self, frame: bytes) -> bool:
        protocol = self.protocol
        transport = protocol.transport
        if getattr(protocol, "state", None) != self.open_state or transport is None:
            return False
        if idle_plain_tcp(transport):
            # Twisted's write() would register the socket for writability and
            # unregister it once written: two epoll changes per socket and frame,
            # most of the cost at 1,000 sockets. With nothing of Twisted's waiting
            # to go out, the kernel takes the bytes now, as asyncio's write does.
            try:
                sent = transport.socket.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                return False  # the connection is going; Twisted sees it on read
            if sent == len(frame):
                return True
            frame = frame[sent:]
        transport.write(frame)
        return True


def idle_plain_tcp(transport: Any) -> bool:
    """A Twisted TCP connection, not TLS, open, with nothing in its write buffer."""
    try:
        return bool(
            transport.connected
            and not transport.TLS
            and not transport.disconnecting
            and not transport._writeDisconnected
            and not transport._tempDataBuffer
            and transport.offset == len(transport.dataBuffer)
        )
    except AttributeError:  # another Twisted, or another transport: its own write()
        return False


class UvicornWriter:
    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol

    @property
    def blocked(self) -> bool:
        # Cleared by pause_writing() past asyncio's high-water mark.
        return not self.protocol.writable.is_set()

    def write(self, frame: bytes) -> bool:
        protocol = self.protocol
        if (
            not protocol.handshake_complete
            or protocol.close_sent
            or protocol.disconnected
            or protocol.initial_response is not None
            or protocol.conn.close_rcvd is not None
            or protocol.transport.is_closing()
        ):
            return False
        protocol.transport.write(frame)
        return True


def writer_for(send: Any) -> Writer | None:
    """A direct writer for the connection behind an ASGI ``send``, where the server allows."""
    for _ in range(MAX_WRAPPERS):
        if isinstance(send, functools.partial):
            protocol = send.args[0] if send.args else None
            if hasattr(protocol, "STATE_OPEN") and hasattr(protocol, "transport"):
                return DaphneWriter(protocol)
            return None
        owner = getattr(send, "__self__", None)
        if is_uvicorn_sansio(owner):
            return UvicornWriter(owner)
        send = getattr(owner, "real_send", None)
    return None


def is_uvicorn_sansio(owner: Any) -> bool:
    cls = type(owner)
    return cls.__name__ == "WebSocketsSansIOProtocol" and cls.__module__.startswith(
        "uvicorn."
    )
