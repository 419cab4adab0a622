"""A socket's place in the hub: its frames written straight to the connection, or
queued for a sender task of its own, so a slow client never holds up the others; one
that falls too far behind is closed, and its page reconnects and resumes."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from realtime import backpressure, transports
from realtime.backpressure import Flow
from realtime.frames import Frame
from webhooks.observability import metrics

logger = logging.getLogger("realtime")

#: Close code the page answers by reconnecting and resuming. Servers accept only
#: 1000 and 3000-4999 from applications, so this mirrors 1008 in the 4000s.
CLOSE_TOO_SLOW = 4008


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
