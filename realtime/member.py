"""The hub: this process's one member of the dashboards' channel-layer group.

It receives every message once, gathers a burst for a short tick and hands the same
frame (a ``batch`` when the burst holds several messages) to every subscriber. The
channel layer is at-most-once: when the hub loses it (Redis restarted), every socket
is closed so that pages reconnect and resynchronise from the database; the hub then
rejoins the group, which Redis forgot.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from typing import Any

from channels.layers import BaseChannelLayer

from realtime import transports
from realtime.backpressure import Flow
from realtime.conf import conf
from realtime.frames import Frame, batch_frame, encode
from realtime.snapshots import SharedSnapshot
from realtime.subscribers import Socket, Subscriber

logger = logging.getLogger("realtime")

#: Close code the page answers by reconnecting and resuming. Servers accept only
#: 1000 and 3000-4999 from applications, so this mirrors 1012 in the 4000s.
CLOSE_LAYER_LOST = 4012

REJOIN_SECONDS = 1800  # well inside the Redis layer's group expiry (one day)
RETRY_SECONDS = (0.5, 1, 2, 5)
STOP_SECONDS = 1.0

#: Marks the channel-layer messages published by this process, which its hubs got
#: directly (see :func:`realtime.hub.deliver_here`) and skip when the layer brings
#: them back.
PROCESS = uuid.uuid4().hex


class Hub:
    """The one member of the dashboards' group for an event loop: it receives from the
    layer, keeps the group membership, and flushes a frame per tick to its sockets."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.group = conf.GROUP
        self.subscribers: set[Subscriber] = set()
        self.channel = ""
        self.pending: list[str] = []
        self.wakeup = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.loop = asyncio.get_running_loop()
        self.snapshots = SharedSnapshot()

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
        # Bounded: channels_redis's receive, cancelled while its connection to a
        # Redis that went away is being replaced, can wait on a future nobody
        # completes; the last socket's disconnect must not wait with it.
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=STOP_SECONDS)
        try:
            await self.layer.group_discard(self.group, self.channel)
        except Exception:
            logger.info(
                "Hub could not leave its group; it expires by itself", exc_info=True
            )

    def add(
        self,
        socket: Socket,
        flow: Flow | None = None,
        writer: transports.Writer | None = None,
    ) -> Subscriber:
        subscriber = Subscriber(socket, conf.SOCKET_QUEUE_FRAMES, flow, writer)
        self.subscribers.add(subscriber)
        return subscriber

    def publish(self, payload: dict[str, Any]) -> None:
        """Queue one message (from the layer, or local) for the next frame."""
        self.publish_encoded(encode(payload))

    def publish_encoded(self, message: str) -> None:
        """As :meth:`publish`, for a message encoded already (once for every hub here)."""
        self.pending.append(message)
        # A snapshot read before this message may miss its event: the next socket
        # to join reads a new one.
        self.snapshots.forget()
        self.wakeup.set()

    async def snapshot(self) -> tuple[int, Frame]:
        """This hub's shared snapshot (see :meth:`SharedSnapshot.get`)."""
        return await self.snapshots.get()

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
            if received.get("origin") == PROCESS:
                continue  # published in this process: every hub here has it already
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
            frame = Frame(messages[0] if len(messages) == 1 else batch_frame(messages))
            for subscriber in list(self.subscribers):
                subscriber.offer(frame)

    def tick(self) -> float:
        """Seconds between frames: a few milliseconds with few sockets, longer with
        many, so that the frames sent per second (each costs the server a write per
        socket) stay within ``REALTIME_MAX_FRAMES_PER_SECOND``; latency grows
        instead of a backlog."""
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
