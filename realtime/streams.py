"""News for the events API's streams, from this process's dashboard hub.

A stream joins the hub as one more socket, so a process keeps a single
membership of the dashboards' group on the channel layer however many pages
and streams it serves, and a delivery stored by any server process (through
Redis) wakes them all. The stream only takes the frames as a cue to read the
database after its cursor.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from realtime import hub
from webhooks.api import live

#: A new event is in a frame (a hub frame is compact JSON, single or a batch).
RECEIVED = '"type":"event.received"'


class NewsSocket:
    """A hub socket that turns frames into news for a stream."""

    def __init__(self, listener: live.Listener) -> None:
        self.listener = listener

    async def send(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        close: bool = False,
    ) -> None:
        if text_data is not None and RECEIVED in text_data:
            self.listener.news()

    async def close(
        self, code: int | bool | None = None, reason: str | None = None
    ) -> None:
        # The hub lost the layer, or this listener fell behind: whatever was in
        # between is only in the database now.
        self.listener.lost()


@contextlib.asynccontextmanager
async def subscribe(listener: live.Listener) -> AsyncIterator[bool]:
    subscriber = await hub.join(NewsSocket(listener))
    subscriber.start()
    try:
        yield True
    finally:
        await hub.leave(subscriber)


def connect() -> None:
    live.set_source(subscribe)
