"""The group committer for databases without an async driver (SQLite): one thread.

Deliveries from any event loop queue their events; the thread stores whatever is
waiting in one transaction through the ORM and hands each outcome back to the
loop its delivery waits in.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    close_old_connections,
    transaction,
)

from webhooks.conf import conf
from webhooks.ingest.batches import (
    Key,
    Outcome,
    Overloaded,
    first_copies,
    known_down,
    per_delivery,
    settle,
)
from webhooks.ingest.breaker import breaker
from webhooks.ingest.inserts import insert_events
from webhooks.ingest.store import save_new, wake_if_pending
from webhooks.models import Event
from webhooks.observability import metrics

if TYPE_CHECKING:
    from webhooks.ingest.committer import Committer

logger = logging.getLogger("webhooks")


@dataclass(frozen=True)
class Waiting:
    event: Event
    future: asyncio.Future[tuple[int, bool]]
    loop: asyncio.AbstractEventLoop


class ThreadCommitter:
    def __init__(self, owner: Committer) -> None:
        self.owner = owner
        self._queue: queue.SimpleQueue[Waiting] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._thread: threading.Thread | None = None

    async def store(self, event: Event) -> tuple[int, bool]:
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
            while len(batch) < self.owner.max_batch:
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
            if breaker.open:
                raise known_down()
            outcomes: Sequence[Outcome] = store_batch(events)
        except Exception as error:
            breaker.saw(error)
            if not isinstance(error, DatabaseError):
                logger.exception("Storing %d deliveries failed", len(batch))
            # A broken connection is replaced on the next batch.
            close_old_connections()
            outcomes = [error] * len(batch)
        self.owner.count(len(batch))
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
    by_loop: dict[
        asyncio.AbstractEventLoop,
        list[tuple[Event, asyncio.Future[tuple[int, bool]], Outcome]],
    ] = defaultdict(list)
    for waiting, outcome in zip(batch, outcomes, strict=True):
        by_loop[waiting.loop].append((waiting.event, waiting.future, outcome))
    for loop, answered in by_loop.items():
        # A loop that has closed has no one waiting for these answers. Processing
        # was woken in this thread already.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(functools.partial(settle, answered, wake=False))


def event_key(event: Event) -> Key:
    return event.endpoint_id, event.delivery_id


def store_batch(events: Sequence[Event]) -> list[Outcome]:
    """Insert ``events`` in one transaction; for each, its id and whether it is new.

    Copies of one delivery within the batch are stored once. If any event
    collides with a row stored earlier (a provider's retry) or concurrently by
    another process, the batch is retried one event at a time so that the
    unique constraint decides for each, as it does for a single delivery.
    """
    first = first_copies(events, event_key)
    unique = list(first.values())
    outcome: dict[Key, Outcome]
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
    # save_new counts a copy of an earlier row; a copy within the batch is counted here.
    return per_delivery(
        events, first, outcome, event_key, on_copy=metrics.delivery_duplicate
    )


def save_one(event: Event) -> Outcome:
    try:
        return save_new(event)
    except DatabaseError as error:
        logger.warning(
            "Delivery to endpoint %s not stored", event.endpoint_id, exc_info=True
        )
        return error
