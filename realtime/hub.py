"""One hub per server process: the only member of the dashboards' group.

Each delivery reaches a process once, whatever the number of dashboards open
on it. The hub encodes it to JSON once, gathers a burst for a short tick, and
hands the same frame (a ``batch`` when the burst holds several messages) to
every socket. Each socket has a bounded queue and its own sender task, so a
slow client never holds up the others; one that falls too far behind is
closed, and its page reconnects and catches up with ``resume``.

The channel layer is at-most-once. When the hub loses it (Redis restarted),
every socket is closed so that pages reconnect and resynchronise from the
database; the hub then rejoins the group, which Redis forgot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import weakref
from typing import Any, Protocol

from channels.layers import BaseChannelLayer, get_channel_layer

from realtime import backpressure
from realtime.backpressure import Flow
from realtime.conf import conf
from webhooks.observability import metrics

logger = logging.getLogger("realtime")

#: Close codes the page answers by reconnecting and resuming. Servers accept only
#: 1000 and 3000-4999 from applications, so these mirror 1008 and 1012 in the 4000s.
CLOSE_TOO_SLOW = 4008
CLOSE_LAYER_LOST = 4012

REJOIN_SECONDS = 1800  # well inside the Redis layer's group expiry (one day)
RETRY_SECONDS = (0.5, 1, 2, 5)


class Socket(Protocol):
    async def send(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool = False,
    ) -> None: ...
    async def close(
        self, code: int | bool | None = None, reason: str | None = None
    ) -> None: ...


class Subscriber:
    """A socket's place in the hub: a bounded queue drained by its own task."""

    def __init__(self, socket: Socket, capacity: int, flow: Flow | None = None) -> None:
        self.socket = socket
        self.flow = flow
        self.queue: asyncio.Queue[str] = asyncio.Queue(capacity)
        self.task: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None
        self.closing = False

    def start(self) -> None:
        """Begin sending; frames offered earlier wait in the queue until now."""
        self.task = asyncio.create_task(self._drain())

    def offer(self, frame: str) -> None:
        if self.closing:
            metrics.dashboard_frames_dropped()
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            metrics.dashboard_frames_dropped()
            logger.warning(
                "A dashboard socket fell %d frames behind; closing it (%d)",
                self.queue.maxsize,
                CLOSE_TOO_SLOW,
            )
            self.close_soon(CLOSE_TOO_SLOW)

    def close_soon(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            self.closer = asyncio.create_task(self._close(code))

    async def _close(self, code: int) -> None:
        try:
            await self.socket.close(code)
        except Exception:
            logger.info("Socket could not be closed; it is gone already", exc_info=True)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _drain(self) -> None:
        while True:
            frame = await self.queue.get()
            if self.flow is not None:
                # The client is not reading: hold back, so the queue fills and
                # offer() closes the socket, rather than the server's memory filling.
                await self.flow.wait()
            await self.socket.send(text_data=frame)


class Hub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.group = conf.GROUP
        self.subscribers: set[Subscriber] = set()
        self.channel = ""
        self.pending: list[str] = []
        self.wakeup = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        self.tasks = [
            asyncio.create_task(self._receive()),
            asyncio.create_task(self._flush()),
            asyncio.create_task(self._rejoin()),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            await self.layer.group_discard(self.group, self.channel)
        except Exception:
            logger.info(
                "Hub could not leave its group; it expires by itself", exc_info=True
            )

    def add(self, socket: Socket, flow: Flow | None = None) -> Subscriber:
        subscriber = Subscriber(socket, conf.SOCKET_QUEUE_FRAMES, flow)
        self.subscribers.add(subscriber)
        return subscriber

    def publish(self, payload: dict[str, Any]) -> None:
        """Queue one message (from the layer, or local) for the next frame."""
        self.pending.append(json.dumps(payload, separators=(",", ":")))
        self.wakeup.set()

    async def _receive(self) -> None:
        failures = 0
        while True:
            try:
                received = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                if await self._layer_lost(failures):
                    failures = 0
                continue
            payload = received.get("message")
            if isinstance(payload, dict):
                self.publish(payload)

    async def _layer_lost(self, failures: int) -> bool:
        """Close the sockets, wait, try to rejoin the group; whether it rejoined."""
        logger.warning(
            "Dashboard hub lost the channel layer; closing its sockets", exc_info=True
        )
        self._close_all(CLOSE_LAYER_LOST)
        await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1])
        try:
            await self.layer.group_add(self.group, self.channel)
        except Exception:
            logger.info("Dashboard hub cannot rejoin its group yet", exc_info=True)
            return False
        # Whatever was published while this hub was out of the group never
        # reaches it, and pages that reconnected meanwhile resumed too early:
        # now that messages flow again, send them back to the database once
        # more. Waiting for the next message instead would leave a page short
        # of the last events for as long as no new one arrives.
        logger.info("Dashboard hub rejoined the channel layer; pages resume")
        self._close_all(CLOSE_LAYER_LOST)
        return True

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        last = -math.inf
        while True:
            await self.wakeup.wait()
            # After a quiet tick the first message goes at once (with whatever
            # was published in the same turn of the loop); during a burst, one
            # frame per tick holds everything that arrived meanwhile, encoded
            # once for everyone.
            await asyncio.sleep(max(0.0, last + self.tick() - loop.time()))
            self.wakeup.clear()
            last = loop.time()
            messages, self.pending = self.pending, []
            if not messages:
                continue
            frame = messages[0] if len(messages) == 1 else batch_frame(messages)
            for subscriber in list(self.subscribers):
                subscriber.offer(frame)

    def tick(self) -> float:
        """Seconds between frames: longer with many sockets, so that the frames
        sent per second (each costs the server a write) stay within
        ``REALTIME_MAX_FRAMES_PER_SECOND``; latency grows instead of a backlog."""
        return max(
            conf.TICK_SECONDS, len(self.subscribers) / conf.MAX_FRAMES_PER_SECOND
        )

    async def _rejoin(self) -> None:
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            try:
                await self.layer.group_add(self.group, self.channel)
            except Exception:
                logger.info(
                    "Dashboard hub could not renew its group membership", exc_info=True
                )

    def _close_all(self, code: int) -> None:
        for subscriber in list(self.subscribers):
            subscriber.close_soon(code)


def batch_frame(encoded: list[str]) -> str:
    # The messages are JSON already: join them rather than decode and encode again.
    return '{"type":"batch","messages":[' + ",".join(encoded) + "]}"


# Per event loop: one in production; a test suite runs many loops in turn.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = (
    weakref.WeakKeyDictionary()
)
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def running_here() -> bool:
    """Whether any hub (so any open dashboard) lives in this process."""
    return len(_hubs) > 0


async def join(socket: Socket) -> Subscriber:
    """Register a socket with this process's hub, starting the hub if it is the first."""
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
        # A consumer's send is the server's; it tells when its bytes stop leaving.
        subscriber = hub.add(
            socket, backpressure.watch(getattr(socket, "base_send", None))
        )
    metrics.dashboard_socket_opened()
    return subscriber


async def leave(subscriber: Subscriber) -> None:
    """Unregister a socket; the hub stops with its last socket."""
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
            await hub.stop()
