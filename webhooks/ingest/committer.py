"""Group commit: the events of concurrent deliveries stored in one transaction.

A delivery verified in the event loop hands its :class:`~webhooks.ingest.inserts.NewEvent`
to the process's :class:`Committer` and awaits its own future. Every event
waiting when the previous commit ends goes into the next one, and each future
is resolved only after that COMMIT, so a 2xx still means a committed row. Under
load one commit (one fsync) covers many deliveries.

On PostgreSQL the committer is a task in the event loop itself, on one async
psycopg connection: a batch is one ``INSERT ... SELECT FROM unnest`` statement
in autocommit (:mod:`webhooks.ingest.inserts`), so nothing else contends with
the loop for the interpreter. In worker mode that same statement sends the
``NOTIFY`` that wakes the workers. The connection is kept while deliveries keep
coming and closed after ``IDLE_SECONDS`` without any. Elsewhere (SQLite, whose
driver has no async interface) one thread per process does the same through
the ORM.

After the commit, ``event_received`` is sent for the new events, once per batch,
in a thread: its receivers are synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import weakref
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.core.signals import setting_changed
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    close_old_connections,
    connections,
    router,
    transaction,
    utils,
)
from django.dispatch import receiver

from webhooks.conf import conf
from webhooks.ingest.breaker import breaker
from webhooks.ingest.inserts import (
    NewEvent,
    existing_sql,
    insert_events,
    insert_parameters,
    insert_sql,
)
from webhooks.ingest.store import (
    announce_received,
    save_new,
    wake_if_pending,
)
from webhooks.models import Event
from webhooks.observability import metrics
from webhooks.processing import dispatch

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger("webhooks")

Outcome = tuple[int, bool] | BaseException
Key = tuple[int, str]

#: A loop's connection is closed once no delivery has come for this long.
IDLE_SECONDS = 5.0
#: Executions of a statement after which psycopg prepares it (its own default).
PREPARE_THRESHOLD = 5


class Overloaded(Exception):
    """More deliveries are waiting for a commit than ``WEBHOOKS_MAX_WAITING_COMMITS``."""


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


@functools.cache
def is_postgresql(alias: str) -> bool:
    # Kept: in the event loop each request has its own context, where Django's
    # connection handler would build a new connection object per delivery.
    return bool(connections[alias].vendor == "postgresql")


@receiver(setting_changed, dispatch_uid="webhooks.ingest.committer.databases_changed")
def _databases_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "DATABASES":
        is_postgresql.cache_clear()


class LoopCommitter:
    """One event loop's committer on PostgreSQL: a task, and one async connection."""

    def __init__(self, owner: Committer, alias: str) -> None:
        self.owner = owner
        self.alias = alias
        self.waiting: list[tuple[NewEvent, asyncio.Future[tuple[int, bool]]]] = []
        self.writer: asyncio.Task[None] | None = None
        self.more = asyncio.Event()
        self.connection: psycopg.AsyncConnection[Any] | None = None
        self.connected_to: tuple[Any, ...] = ()

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
                self.owner.stats["batches"] += 1
                self.owner.stats["events"] += len(batch)
                created = settle_futures(batch, outcomes)
                if created:
                    after_commit(created, wake=not notified)
        finally:
            self.writer = None
            stopped = OperationalError("The committer stopped")
            for _, future in self.waiting:
                if not future.done():
                    future.set_exception(stopped)
            self.waiting.clear()
            await self.close()

    async def commit(self, rows: list[NewEvent]) -> tuple[list[Outcome], bool]:
        """Store ``rows``; each one's outcome, and whether the workers were notified.

        Copies of one delivery within the batch are stored once. If the batch
        fails on a value the database refuses, it is stored one row at a time,
        so that only that delivery fails.
        """
        first: dict[Key, NewEvent] = {}
        for row in rows:
            first.setdefault(row.key, row)
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
        outcomes: list[Outcome] = []
        for row in rows:
            outcome = stored[row.key]
            if isinstance(outcome, tuple) and first[row.key] is not row:
                outcome = (outcome[0], False)
            if isinstance(outcome, tuple) and not outcome[1] and metrics.enabled():
                metrics.delivery_duplicate(row.event())
            outcomes.append(outcome)
        return outcomes, notify is not None

    async def insert(
        self, rows: list[NewEvent], notify: str | None
    ) -> dict[Key, Outcome]:
        """One statement, committed when it returns (autocommit)."""
        import psycopg  # only PostgreSQL projects have it

        connection = await self.connect()
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

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        import psycopg

        database = connections[self.alias]
        settings_dict = database.settings_dict
        target = tuple(settings_dict.get(name) for name in ("HOST", "PORT", "NAME"))
        target += (settings_dict.get("USER"),)
        if self.connection is not None and (
            self.connected_to != target or self.connection.closed
        ):
            await self.close()
        if self.connection is not None:
            return self.connection
        params = database.get_connection_params()
        params.pop("cursor_factory", None)  # Django's is for blocking connections
        options = settings_dict.get("OPTIONS", {})
        if "prepare_threshold" not in options:
            # Django leaves statements unprepared for the sake of transaction-mode
            # poolers; the batch statement is the same text every time, and
            # prepared once it is not parsed and planned again per batch. A
            # project behind such a pooler sets OPTIONS["prepare_threshold"] (None).
            params["prepare_threshold"] = PREPARE_THRESHOLD
        pool = options.get("pool")
        timeout = float(
            (pool.get("timeout") if isinstance(pool, dict) else None)
            or options.get("connect_timeout")
            or 5
        )
        try:
            async with asyncio.timeout(timeout):
                connection = await psycopg.AsyncConnection.connect(
                    **params, autocommit=True
                )
            if role := options.get("assume_role"):
                await connection.execute(
                    psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role))
                )
        except (psycopg.Error, TimeoutError) as error:
            raise OperationalError(
                f"Cannot connect to the database: {error}"
            ) from error
        self.connection, self.connected_to = connection, target
        return connection

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


def known_down() -> DatabaseError:
    # For deliveries queued before the breaker tripped: answered now, not after
    # a connection attempt that would wait for its timeout.
    return OperationalError("The database is known to be down")


def django_error(error: Exception) -> utils.Error:
    """``error`` from psycopg as the Django exception of the same name, as Django's cursors raise it."""
    import psycopg

    for kind in (
        utils.DataError,
        utils.OperationalError,
        utils.IntegrityError,
        utils.InternalError,
        utils.ProgrammingError,
        utils.NotSupportedError,
        utils.DatabaseError,
        utils.InterfaceError,
    ):
        if isinstance(error, getattr(psycopg, kind.__name__)):
            return kind(*error.args)
    return utils.DatabaseError(*error.args)


def settle_futures(
    batch: list[tuple[NewEvent, asyncio.Future[tuple[int, bool]]]],
    outcomes: Sequence[Outcome],
) -> list[NewEvent]:
    """Answer the waiting deliveries; the rows that are new."""
    created = []
    for (row, future), outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, tuple) and outcome[1]:
            created.append(row)
        if future.done():  # the client went away; its event is stored anyway
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    return created


def after_commit(rows: list[NewEvent], *, wake: bool) -> None:
    """In the event loop, once the answers are given: announce the new events, wake processing."""
    task = asyncio.get_running_loop().create_task(announce_rows(rows, wake=wake))
    _announcing.add(task)
    task.add_done_callback(_announcing.discard)


async def announce_rows(rows: list[NewEvent], *, wake: bool) -> None:
    # Signal receivers are synchronous code (the dashboards' broadcast among
    # them): one thread hand-off per batch, after the answers have gone.
    try:
        await sync_to_async(announce_rows_in_thread, thread_sensitive=False)(rows, wake)
    except Exception:
        logger.exception("Announcing %d new events failed", len(rows))


# The thread path, for databases without an async driver.


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
        self.owner.stats["batches"] += 1
        self.owner.stats["events"] += len(batch)
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
    try:
        await sync_to_async(announce_in_thread, thread_sensitive=False)(events, False)
    except Exception:
        logger.exception("Announcing %d new events failed", len(events))


def announce_rows_in_thread(rows: list[NewEvent], wake: bool) -> None:
    announce_in_thread([row.event() for row in rows], wake)


def announce_in_thread(events: list[Event], wake: bool) -> None:
    try:
        announce_received(events)
        if wake:
            wake_if_pending(events)
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
    first: dict[Key, Event] = {}
    for event in events:
        first.setdefault((event.endpoint_id, event.delivery_id), event)
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
