"""The ``snapshot`` a dashboard gets on joining, read and encoded once for every socket
of a process that joins before the next message."""

from __future__ import annotations

import asyncio

from realtime import queries
from realtime.conf import conf
from realtime.frames import Frame, encode
from realtime.wire import message


class SharedSnapshot:
    """One hub's snapshot read, shared until a message makes it stale."""

    def __init__(self) -> None:
        self.read: asyncio.Future[tuple[int, Frame]] | None = None

    async def get(self) -> tuple[int, Frame]:
        """The newest event id and the ``snapshot`` frame, read and encoded once for
        every socket that joins before the next message.

        A socket joins before it asks, so whatever the snapshot misses reaches it
        as a message; whatever was published before it joined, the snapshot holds,
        since a message clears the shared read and the next socket reads again.
        """
        read = self.read
        if read is None or (read.done() and read.exception() is not None):
            read = self.read = asyncio.ensure_future(read_snapshot())
        return await asyncio.shield(read)

    def forget(self) -> None:
        """A message was published: a read made before it may miss its event."""
        self.read = None


async def read_snapshot() -> tuple[int, Frame]:
    # Not in line behind the sessions of sockets still connecting: the sockets
    # waiting for it have been accepted.
    latest, events = await queries.apart(queries.snapshot, conf.SNAPSHOT_SIZE)
    return latest, Frame(encode(message("snapshot", events=events)))
