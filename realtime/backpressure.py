"""Whether a dashboard socket's bytes are leaving the server: backpressure under daphne.

Under uvicorn an ASGI ``websocket.send`` waits while the client's TCP window is
full, so a socket whose page stops reading fills its queue in the hub and is
closed. Daphne's send returns at once, and Twisted would keep the frames of a
client that never reads in memory without bound, the hub none the wiser.

Twisted itself knows: when a connection's write buffer passes its high-water
mark it pauses the connection's producer (daphne's HTTP channel) and sets the
transport's ``producerPaused`` until the buffer has drained. The hub waits on
that flag before each frame, so the socket's queue fills and it is closed.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

#: How often a held-back socket looks again whether its buffer has drained.
POLL_SECONDS = 0.05
MAX_WRAPPERS = 8


class Flow:
    """Whether the socket's write buffer has room; always has under other servers."""

    def __init__(self, transport: Any = None) -> None:
        self.transport = transport

    @property
    def blocked(self) -> bool:
        return bool(getattr(self.transport, "producerPaused", False))

    async def wait(self) -> None:
        while self.blocked:
            await asyncio.sleep(POLL_SECONDS)


def watch(send: Any) -> Flow:
    """A :class:`Flow` for the socket behind the ASGI ``send`` callable."""
    protocol = daphne_protocol(send)
    return Flow(getattr(protocol, "transport", None))


def daphne_protocol(send: Any) -> Any:
    # Daphne hands each application functools.partial(server.handle_reply, protocol);
    # Channels' session middleware wraps it in a method of an object that keeps it
    # as ``real_send``.
    for _ in range(MAX_WRAPPERS):
        if isinstance(send, functools.partial):
            return send.args[0] if send.args else None
        send = getattr(getattr(send, "__self__", None), "real_send", None)
    return None
