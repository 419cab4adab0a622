"""Group commit: the events of concurrent deliveries stored in one transaction.

A delivery verified in the event loop hands its unsaved Event to the process's
:class:`Committer` and awaits its own future. One thread takes every event
waiting, inserts them in one transaction and resolves each future only after
the COMMIT, so a 2xx still means a committed row. Under load a batch holds the
deliveries that arrived during the previous commit: one commit (one fsync)
covers many of them, and no delivery costs a thread hand-off of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    close_old_connections,
    transaction,
)

from webhooks.conf import conf
from webhooks.ingest.inserts import insert_events
from webhooks.ingest.store import (
    announce_received,
    ordering_key_of,
    save_new,
    wake_if_pending,
)
from webhooks.models import Event
from webhooks.observability import metrics

logger = logging.getLogger("webhooks")

Outcome = tuple[int, bool] | BaseException


class Overloaded(Exception):
    """More deliveries are waiting for a commit than ``WEBHOOKS_MAX_WAITING_COMMITS``."""


@dataclass(frozen=True)
class Waiting:
    event: Event
    future: asyncio.Future[tuple[int, bool]]
    loop: asyncio.AbstractEventLoop


class Committer:
    def __init__(self, *, max_batch: int = 500) -> None:
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Waiting] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._thread: threading.Thread | None = None
        #: Transactions committed and events they held, for health and the benchmarks.
        self.stats: Counter[str] = Counter()

    async def store(self, event: Event) -> tuple[int, bool]:
        """Insert ``event`` (or find its earlier copy); return its id and whether it is new.

        Raises :class:`Overloaded` instead of queueing beyond the bound, and the
        database's error if the transaction could not commit.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, bool]] = loop.create_future()
        with self._lock:
            if self._waiting >= conf.MAX_WAITING_COMMITS:
                raise Overloaded
            self._waiting += 1
            metrics.waiting_commits(self._waiting)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="webhooks-committer", daemon=True
                )
                self._thread.start()
        self._queue.put(Waiting(event, future, loop))
        return await future

    def _serve(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            with self._lock:
                self._waiting -= len(batch)
                metrics.waiting_commits(self._waiting)
            metrics.commit_batch(len(batch))
            try:
                self._commit(batch)
            except Exception as error:
                # The thread must outlive any one batch, or every later delivery waits.
                logger.exception("The committer failed on a batch of %d", len(batch))
                answer(batch, [error] * len(batch))
            if self._queue.empty():
                # Idle: give the connection back (to the pool, or closed when
                # CONN_MAX_AGE says so) instead of holding it between bursts.
                close_old_connections()

    def _commit(self, batch: list[Waiting]) -> None:
        events = [waiting.event for waiting in batch]
        try:
            outcomes: Sequence[Outcome] = store_batch(events)
        except Exception as error:
            if not isinstance(error, DatabaseError):
                logger.exception("Storing %d deliveries failed", len(batch))
            # A broken connection is replaced on the next batch.
            close_old_connections()
            outcomes = [error] * len(batch)
        self.stats["batches"] += 1
        self.stats["events"] += len(batch)
        created = [
            event
            for event, outcome in zip(events, outcomes, strict=True)
            if isinstance(outcome, tuple) and outcome[1]
        ]
        if created:
            try:
                wake_if_pending(created)
            except Exception:
                logger.exception("Waking the processing of new events failed")
        answer(batch, outcomes)


def answer(batch: list[Waiting], outcomes: Sequence[Outcome]) -> None:
    """From the committer thread: hand each outcome to its request's event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Waiting, Outcome]]] = (
        defaultdict(list)
    )
    for waiting, outcome in zip(batch, outcomes, strict=True):
        by_loop[waiting.loop].append((waiting, outcome))
    for loop, settled in by_loop.items():
        # A loop that has closed has no one waiting for these answers.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, settled)


def settle(settled: list[tuple[Waiting, Outcome]]) -> None:
    """In the event loop: answer the waiting deliveries, then announce the new events."""
    created = []
    for waiting, outcome in settled:
        if isinstance(outcome, tuple) and outcome[1]:
            created.append(waiting.event)
        if waiting.future.done():  # the client went away; its event is stored anyway
            continue
        if isinstance(outcome, BaseException):
            waiting.future.set_exception(outcome)
        else:
            waiting.future.set_result(outcome)
    if created:
        task = asyncio.get_running_loop().create_task(announce(created))
        _announcing.add(task)
        task.add_done_callback(_announcing.discard)


#: Announcements under way; the loop keeps only weak references to tasks.
_announcing: set[asyncio.Task[None]] = set()


async def announce(events: list[Event]) -> None:
    # Signal receivers are synchronous code (the dashboards' broadcast among
    # them): one thread hand-off per batch, after the answers have gone.
    try:
        await sync_to_async(announce_in_thread, thread_sensitive=False)(events)
    except Exception:
        logger.exception("Announcing %d new events failed", len(events))


def announce_in_thread(events: list[Event]) -> None:
    try:
        announce_received(events)
    finally:
        # Receivers may have queried; release it as a request's end would.
        close_old_connections()


def store_batch(events: Sequence[Event]) -> list[Outcome]:
    """Insert ``events`` in one transaction; for each, its id and whether it is new.

    Copies of one delivery within the batch are stored once. If any event
    collides with a row stored earlier (a provider's retry) or concurrently by
    another process, the batch is retried one event at a time so that the
    unique constraint decides for each, as it does for a single delivery.
    """
    first: dict[tuple[int, str], Event] = {}
    for event in events:
        event.ordering_key = ordering_key_of(event)
        first.setdefault((event.endpoint_id, event.delivery_id), event)
    unique = list(first.values())
    outcome: dict[tuple[int, str], Outcome]
    try:
        with transaction.atomic():
            insert_events(unique)
        outcome = {key: (event.pk, True) for key, event in first.items()}
    except (IntegrityError, DataError):
        # A duplicate of an earlier row, or one value the database refuses:
        # one at a time, so that only that delivery is affected.
        for event in unique:
            event.pk = None
        outcome = {key: save_one(event) for key, event in first.items()}
    results: list[Outcome] = []
    for event in events:
        key = (event.endpoint_id, event.delivery_id)
        stored = outcome[key]
        if isinstance(stored, tuple) and first[key] is not event:
            stored = (stored[0], False)
            metrics.delivery_duplicate(event)
        results.append(stored)
    return results


def save_one(event: Event) -> Outcome:
    try:
        return save_new(event)
    except DatabaseError as error:
        logger.warning(
            "Delivery to endpoint %s not stored", event.endpoint_id, exc_info=True
        )
        return error


committer = Committer()
