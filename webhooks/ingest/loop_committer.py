"""The group committer on PostgreSQL: a task in the event loop, on one async connection.

A batch is one ``INSERT ... SELECT FROM unnest`` statement in autocommit
(:mod:`webhooks.ingest.inserts`), so nothing else contends with the loop for
the interpreter. In worker mode that same statement sends the ``NOTIFY`` that
wakes the workers. The connection (:mod:`webhooks.ingest.async_connection`) is
kept while deliveries keep coming and closed after ``IDLE_SECONDS`` without any.
"""

from __future__ import annotations

import asyncio
import logging
from operator import attrgetter
from typing import TYPE_CHECKING

from django.db import DatabaseError, DataError, IntegrityError, OperationalError

from webhooks.conf import conf
from webhooks.ingest.async_connection import KeptConnection, django_error
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
from webhooks.ingest.inserts import (
    NewEvent,
    existing_sql,
    insert_parameters,
    insert_sql,
)
from webhooks.observability import metrics
from webhooks.processing import dispatch

if TYPE_CHECKING:
    from webhooks.ingest.committer import Committer

logger = logging.getLogger("webhooks")

#: A loop's connection is closed once no delivery has come for this long.
IDLE_SECONDS = 5.0

row_key = attrgetter("key")


class LoopCommitter:
    """One event loop's committer on PostgreSQL: a task, and one async connection."""

    def __init__(self, owner: Committer, alias: str) -> None:
        self.owner = owner
        self.alias = alias
        self.waiting: list[tuple[NewEvent, asyncio.Future[tuple[int, bool]]]] = []
        self.writer: asyncio.Task[None] | None = None
        self.more = asyncio.Event()
        self.connection = KeptConnection(alias)

    async def store(self, row: NewEvent) -> tuple[int, bool]:
        if len(self.waiting) >= conf.MAX_WAITING_COMMITS:
            raise Overloaded
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, bool]] = loop.create_future()
        self.waiting.append((row, future))
        metrics.waiting_commits(len(self.waiting))
        if self.writer is None:
            self.writer = loop.create_task(self.write())
        else:
            self.more.set()
        return await future

    async def write(self) -> None:
        try:
            while True:
                if not self.waiting:
                    self.more.clear()
                    try:
                        async with asyncio.timeout(IDLE_SECONDS):
                            await self.more.wait()
                    except TimeoutError:
                        return
                    continue
                await self.write_batch()
        finally:
            self.writer = None
            stopped = OperationalError("The committer stopped")
            for _, future in self.waiting:
                if not future.done():
                    future.set_exception(stopped)
            self.waiting.clear()
            await self.close()

    async def write_batch(self) -> None:
        batch = self.waiting[: self.owner.max_batch]
        del self.waiting[: len(batch)]
        metrics.waiting_commits(len(self.waiting))
        metrics.commit_batch(len(batch))
        try:
            outcomes, notified = await self.commit([row for row, _ in batch])
        except Exception as error:
            # The task must outlive any one batch, or every later delivery waits.
            logger.exception("Storing %d deliveries failed", len(batch))
            outcomes, notified = [error] * len(batch), False
        self.owner.count(len(batch))
        settle(
            (
                (row, future, outcome)
                for (row, future), outcome in zip(batch, outcomes, strict=True)
            ),
            wake=not notified,
        )

    async def commit(self, rows: list[NewEvent]) -> tuple[list[Outcome], bool]:
        """Store ``rows``; each one's outcome, and whether the workers were notified.

        Copies of one delivery within the batch are stored once. If the batch
        fails on a value the database refuses, it is stored one row at a time,
        so that only that delivery fails.
        """
        first = first_copies(rows, row_key)
        notify = dispatch.CHANNEL if conf.PROCESSING == "worker" else None
        if breaker.open:
            return [known_down()] * len(rows), False
        stored: dict[Key, Outcome]
        try:
            stored = await self.insert(list(first.values()), notify)
        except (IntegrityError, DataError):
            stored = {}
            for row in first.values():
                try:
                    stored |= await self.insert([row], notify)
                except DatabaseError as error:
                    breaker.saw(error)
                    logger.warning(
                        "Delivery to endpoint %s not stored", row.key[0], exc_info=True
                    )
                    stored[row.key] = error
        except DatabaseError as error:
            breaker.saw(error)
            return [error] * len(rows), False
        outcomes = per_delivery(rows, first, stored, row_key)
        if metrics.enabled():
            for row, outcome in zip(rows, outcomes, strict=True):
                if isinstance(outcome, tuple) and not outcome[1]:
                    metrics.delivery_duplicate(row.event())
        return outcomes, notify is not None

    async def insert(
        self, rows: list[NewEvent], notify: str | None
    ) -> dict[Key, Outcome]:
        """One statement, committed when it returns (autocommit)."""
        import psycopg  # only PostgreSQL projects have it

        connection = await self.connection.open()
        keys = [row.key for row in rows]
        stored: dict[Key, Outcome] = {}
        try:
            cursor = await connection.execute(
                insert_sql(self.alias, notify),
                insert_parameters(rows, self.alias, notify),
            )
            for pk, endpoint_id, delivery_id, *_ in await cursor.fetchall():
                stored[(endpoint_id, delivery_id)] = (pk, True)
            missing = [key for key in keys if key not in stored]
            if missing:
                # Copies of rows stored earlier, or by another process meanwhile.
                cursor = await connection.execute(
                    existing_sql(self.alias),
                    [[key[0] for key in missing], [key[1] for key in missing]],
                )
                for pk, endpoint_id, delivery_id in await cursor.fetchall():
                    stored[(endpoint_id, delivery_id)] = (pk, False)
        except psycopg.Error as error:
            if connection.broken or connection.closed:
                await self.close()  # replaced on the next batch
            raise django_error(error) from error
        for key in keys:
            if key not in stored:
                stored[key] = IntegrityError(f"Row for {key} neither stored nor found")
        for row in rows:
            outcome = stored[row.key]
            if isinstance(outcome, tuple):
                row.pk, row.created = outcome
        return stored

    async def close(self) -> None:
        await self.connection.close()
