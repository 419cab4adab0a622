"""One hub per server process: the only member of the dashboards' group.

Each delivery reaches a process once, whatever the number of dashboards open
on it. The hub encodes it to JSON once, gathers a burst for a short tick, and
hands the same frame (a ``batch`` when the burst holds several messages) to
every socket; where the server lets the hub reach a socket's connection
(daphne, uvicorn: see ``realtime.transports``) the WebSocket frame itself is
built once and its bytes written to each connection. A socket that cannot take
a frame at once gets a bounded queue and a sender task, so a slow client never
holds up the others; one that falls too far behind is closed, and its page
reconnects and catches up with ``resume``.

A message published in this process goes straight to its hubs, without the
channel layer (see :func:`deliver_here`); the layer carries it to the others.

The channel layer is at-most-once. When the hub loses it (Redis restarted),
every socket is closed so that pages reconnect and resynchronise from the
database; the hub then rejoins the group, which Redis forgot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
import weakref
from typing import Any, Protocol

from channels.layers import BaseChannelLayer, get_channel_layer

from realtime import backpressure, queries, transports
from realtime.backpressure import Flow
from realtime.conf import conf
from realtime.wire import message
from webhooks.observability import metrics

logger = logging.getLogger("realtime")

#: Close codes the page answers by reconnecting and resuming. Servers accept only
#: 1000 and 3000-4999 from applications, so these mirror 1008 and 1012 in the 4000s.
CLOSE_TOO_SLOW = 4008
CLOSE_LAYER_LOST = 4012

REJOIN_SECONDS = 1800  # well inside the Redis layer's group expiry (one day)
RETRY_SECONDS = (0.5, 1, 2, 5)
STOP_SECONDS = 1.0


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


class Frame:
    """One message or batch for every socket: its JSON text, and the WebSocket frame
    carrying it, built once on first use and then written to each connection."""

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = transports.text_frame(self.text.encode())
        return self._wire


class Subscriber:
    """A socket's place in the hub.

    A frame goes straight onto the server's connection when it can (a direct
    writer, nothing queued, the write buffer below its mark): no task, no queue.
    Otherwise it waits in a bounded queue drained by a task of its own, which
    exists only while frames wait, so a slow client never holds up the others.
    """

    def __init__(
        self,
        socket: Socket,
        capacity: int,
        flow: Flow | None = None,
        writer: transports.Writer | None = None,
    ) -> None:
        self.socket = socket
        self.flow = flow
        self.writer = writer
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(capacity)
        self.task: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None
        self.closing = False
        self.started = False

    def start(self) -> None:
        """Begin sending; frames offered earlier wait in the queue until now."""
        self.started = True
        if not self.queue.empty():
            self._drain_soon()

    def offer(self, frame: Frame | str) -> None:
        if self.closing:
            metrics.dashboard_frames_dropped()
            return
        if isinstance(frame, str):
            frame = Frame(frame)
        writer = self.writer
        if (
            self.started
            and self.task is None
            and writer is not None
            and not writer.blocked
        ):
            writer.write(frame.wire)
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
            return
        if self.started and self.task is None:
            self._drain_soon()

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
        self.closing = True
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def _drain_soon(self) -> None:
        self.task = asyncio.create_task(self._drain())
        self.task.add_done_callback(_log_failure)

    async def _drain(self) -> None:
        try:
            while not self.queue.empty():
                frame = self.queue.get_nowait()
                if self.writer is not None:
                    while self.writer.blocked:
                        # The client is not reading: hold back, so the queue fills and
                        # offer() closes the socket, rather than the server's memory filling.
                        await asyncio.sleep(backpressure.POLL_SECONDS)
                    self.writer.write(frame.wire)
                    continue
                if self.flow is not None:
                    await self.flow.wait()
                await self.socket.send(text_data=frame.text)
        finally:
            # No await between the last look at the queue and this: an offer made
            # after it starts a new drain, one made before it was drained here.
            if self.task is asyncio.current_task():
                self.task = None


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.info(
            "A dashboard socket stopped taking frames", exc_info=task.exception()
        )


class Hub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.group = conf.GROUP
        self.subscribers: set[Subscriber] = set()
        self.channel = ""
        self.pending: list[str] = []
        self.wakeup = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.loop = asyncio.get_running_loop()
        self.snapshot_read: asyncio.Future[tuple[int, Frame]] | None = None

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
        self.snapshot_read = None
        self.wakeup.set()

    async def snapshot(self) -> tuple[int, Frame]:
        """The newest event id and the ``snapshot`` frame, read and encoded once for
        every socket that joins before the next message.

        A socket joins before it asks, so whatever the snapshot misses reaches it
        as a message; whatever was published before it joined, the snapshot holds,
        since a message clears the shared read and the next socket reads again.
        """
        read = self.snapshot_read
        if read is None or (read.done() and read.exception() is not None):
            read = self.snapshot_read = asyncio.ensure_future(read_snapshot())
        return await asyncio.shield(read)

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


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def batch_frame(encoded: list[str]) -> str:
    # The messages are JSON already: join them rather than decode and encode again.
    return '{"type":"batch","messages":[' + ",".join(encoded) + "]}"


async def read_snapshot() -> tuple[int, Frame]:
    # Not in line behind the sessions of sockets still connecting: the sockets
    # waiting for it have been accepted.
    latest, events = await queries.apart(queries.snapshot, conf.SNAPSHOT_SIZE)
    return latest, Frame(encode(message("snapshot", events=events)))


#: Marks the channel-layer messages published by this process, which its hubs got
#: directly (see :func:`deliver_here`) and skip when the layer brings them back.
PROCESS = uuid.uuid4().hex

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
