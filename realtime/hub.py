"""One hub per server process: the only member of the dashboards' group.

Each delivery reaches a process once, whatever the number of dashboards open
on it. The hub (``realtime.member``) encodes it to JSON once, gathers a burst
for a short tick, and hands the same frame (``realtime.frames``; a ``batch``
when the burst holds several messages) to every socket; where the server lets
the hub reach a socket's connection (daphne, uvicorn: see
``realtime.transports``) the WebSocket frame itself is built once and its bytes
written to each connection. A socket that cannot take a frame at once gets a
bounded queue and a sender task (``realtime.subscribers``), so a slow client
never holds up the others; one that falls too far behind is closed, and its
page reconnects and catches up with ``resume``. The snapshot a joining socket
gets is read once for all that join together (``realtime.snapshots``).

This module holds the hubs of the process, one per event loop: sockets join and
leave here, and a message published in this process goes straight to its hubs,
without the channel layer (see :func:`deliver_here`); the layer carries it to
the others.

The channel layer is at-most-once. When the hub loses it (Redis restarted),
every socket is closed so that pages reconnect and resynchronise from the
database; the hub then rejoins the group, which Redis forgot.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from channels.layers import get_channel_layer

from realtime import backpressure, transports
from realtime.frames import Frame, encode
from realtime.member import CLOSE_LAYER_LOST, PROCESS, Hub
from realtime.subscribers import CLOSE_TOO_SLOW, Socket, Subscriber
from webhooks.observability import metrics

__all__ = [
    "CLOSE_LAYER_LOST",
    "CLOSE_TOO_SLOW",
    "PROCESS",
    "Frame",
    "Hub",
    "Socket",
    "Subscriber",
    "deliver_here",
    "join",
    "leave",
    "running_here",
    "running_loop",
    "snapshot",
]

# Per event loop: one in production; a test suite runs many loops in turn.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = (
    weakref.WeakKeyDictionary()
)
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
#: The hubs of _hubs, for other threads to read without iterating the dictionary
#: while the loop's thread changes it: replaced whole, never changed in place.
_running: tuple[Hub, ...] = ()


def running_here() -> bool:
    """Whether any hub (so any open dashboard) lives in this process."""
    return len(_hubs) > 0


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop of a hub of this process that is still running, if any."""
    for running in _running:
        if running.loop.is_running():
            return running.loop
    return None


def deliver_here(payload: dict[str, Any]) -> int:
    """Hand a message to every hub of this process, from any thread: straight into the
    hub from its own loop, else with one wake-up of that loop. How many it reached."""
    hubs = _running
    if not hubs:
        return 0
    encoded = encode(payload)
    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    reached = 0
    for hub in hubs:
        if hub.loop is here:
            hub.publish_encoded(encoded)
        else:
            try:
                hub.loop.call_soon_threadsafe(hub.publish_encoded, encoded)
            except RuntimeError:
                continue  # its loop has closed (a test's); the hub is gone
        reached += 1
    return reached


async def join(socket: Socket) -> Subscriber:
    """Register a socket with this process's hub, starting the hub if it is the first."""
    global _running
    loop = asyncio.get_running_loop()
    async with _locks.setdefault(loop, asyncio.Lock()):
        hub = _hubs.get(loop)
        if hub is None:
            layer = get_channel_layer()
            if layer is None:
                raise RuntimeError(
                    "CHANNEL_LAYERS has no default layer (check realtime.E003)"
                )
            hub = Hub(layer)
            await hub.start()
            _hubs[loop] = hub
            _running = tuple(_hubs.values())
        # A consumer's send is the server's: through it, its connection is found.
        send = getattr(socket, "base_send", None)
        writer = transports.writer_for(send)
        subscriber = hub.add(
            socket, None if writer else backpressure.watch(send), writer
        )
    metrics.dashboard_socket_opened()
    return subscriber


async def snapshot() -> tuple[int, Frame]:
    """This process's shared snapshot (see :meth:`Hub.snapshot`); join first."""
    return await _hubs[asyncio.get_running_loop()].snapshot()


async def leave(subscriber: Subscriber) -> None:
    """Unregister a socket; the hub stops with its last socket."""
    global _running
    metrics.dashboard_socket_closed()
    await subscriber.stop()
    loop = asyncio.get_running_loop()
    async with _locks.setdefault(loop, asyncio.Lock()):
        hub = _hubs.get(loop)
        if hub is None:
            return
        hub.subscribers.discard(subscriber)
        if not hub.subscribers:
            del _hubs[loop]
            _running = tuple(_hubs.values())
            await hub.stop()
