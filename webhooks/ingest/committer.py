"""Group commit: the events of concurrent deliveries stored in one transaction.

A delivery verified in the event loop hands its :class:`~webhooks.ingest.inserts.NewEvent`
to the process's :class:`Committer` and awaits its own future. Every event
waiting when the previous commit ends goes into the next one, and each future
is resolved only after that COMMIT, so a 2xx still means a committed row. Under
load one commit (one fsync) covers many deliveries.

On PostgreSQL the committer is a task in each event loop, on one async psycopg
connection (:mod:`webhooks.ingest.loop_committer`). Elsewhere (SQLite, whose
driver has no async interface) one thread per process does the same through the
ORM (:mod:`webhooks.ingest.thread_committer`). What both share, from the bound
on waiting deliveries to the answers, is in :mod:`webhooks.ingest.batches`.

After the commit, ``event_received`` is sent for the new events, once per batch,
in a thread: its receivers are synchronous code.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections import Counter
from typing import Any

from django.core.signals import setting_changed
from django.db import connections, router
from django.dispatch import receiver

from webhooks.ingest.batches import Overloaded
from webhooks.ingest.inserts import NewEvent
from webhooks.ingest.loop_committer import LoopCommitter
from webhooks.ingest.thread_committer import ThreadCommitter, Waiting, store_batch
from webhooks.models import Event

__all__ = [
    "Committer",
    "LoopCommitter",
    "Overloaded",
    "ThreadCommitter",
    "Waiting",
    "committer",
    "is_postgresql",
    "store_batch",
]


class Committer:
    """The process's group committer: per event loop on PostgreSQL, one thread elsewhere."""

    def __init__(self, *, max_batch: int = 500) -> None:
        self.max_batch = max_batch
        #: Transactions committed and events they held, for health and the benchmarks.
        self.stats: Counter[str] = Counter()
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, LoopCommitter
        ] = weakref.WeakKeyDictionary()
        self._thread = ThreadCommitter(self)

    async def store(self, row: NewEvent) -> tuple[int, bool]:
        """Insert ``row`` (or find its earlier copy); return its id and whether it is new.

        Raises :class:`Overloaded` instead of queueing beyond the bound, and the
        database's error if the transaction could not commit.
        """
        alias = router.db_for_write(Event)
        if not is_postgresql(alias):
            return await self._thread.store(row.event())
        loop = asyncio.get_running_loop()
        committer = self._loops.get(loop)
        if committer is None or committer.alias != alias:
            committer = self._loops[loop] = LoopCommitter(self, alias)
        return await committer.store(row)

    def count(self, events: int) -> None:
        """Called once per batch, committed or not, by the committer that wrote it."""
        self.stats["batches"] += 1
        self.stats["events"] += events


@functools.cache
def is_postgresql(alias: str) -> bool:
    # Kept: in the event loop each request has its own context, where Django's
    # connection handler would build a new connection object per delivery.
    return bool(connections[alias].vendor == "postgresql")


@receiver(setting_changed, dispatch_uid="webhooks.ingest.committer.databases_changed")
def _databases_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "DATABASES":
        is_postgresql.cache_clear()


committer = Committer()
