"""The seam through which the event stream learns of new events as they arrive.

``webhooks`` never imports ``realtime``. When the dashboard app is installed it
registers a source here (the per-process hub on the channel layer, so one
layer membership serves every dashboard and stream of a process, and Redis
carries news between processes). Without one, streams poll the database.

News is only a hint to read the database again: the database is the source of
truth, so a notification the layer drops delays an event, never loses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Listener(Protocol):
    def news(self) -> None:
        """Something new may be in the database."""

    def lost(self) -> None:
        """The source stopped delivering news; subscribe again."""


Source = Callable[[Listener], AbstractAsyncContextManager[bool]]

_source: Source | None = None


def set_source(source: Source | None) -> None:
    global _source
    _source = source


@contextlib.asynccontextmanager
async def _nothing(listener: Listener) -> AsyncIterator[bool]:
    yield False


def subscribe(listener: Listener) -> AbstractAsyncContextManager[bool]:
    """Deliver news to ``listener`` within the block; the block's value says whether any will come."""
    return (_source or _nothing)(listener)
