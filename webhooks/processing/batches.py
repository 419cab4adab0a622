"""Running claimed events in batches: one transaction, a savepoint per handler.

One transaction holds a batch's events (row locks on PostgreSQL), runs each
event's handlers in savepoints, and records every outcome with one INSERT of
attempts and one fenced UPDATE of the events (``outcomes``). A handler's
database writes therefore commit together with the record that it ran: a
killed worker never re-runs a handler whose writes committed, and never loses
one whose writes did not. A batch commits when it has run its events or after
``WEBHOOKS_BATCH_SECONDS``, whichever comes first.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Event
from webhooks.observability import metrics, tracing
from webhooks.processing.claims import release
from webhooks.processing.handlers import Handler, handlers_for
from webhooks.processing.outcomes import (
    LeaseLost,
    Outcome,
    backoff_seconds,
    by_claim,
    fence,
    finish,
)

logger = logging.getLogger("webhooks")

UNPARSED = "The body did not parse as JSON or a form, so no handler can read it (it is stored as received)."

#: PostgreSQL: lock the rows of a batch that are still held under one claim.
LOCK_SQL = f"""
    SELECT id FROM {Event._meta.db_table}
    WHERE id = ANY(%s) AND status = '{Event.Status.PROCESSING}'
        AND claimed_by = %s AND attempts = %s
    FOR UPDATE
"""


def run(event_id: int, worker: str) -> str | None:
    """Run the handlers of an event ``worker`` has claimed; return its new status.

    Returns None when the lease was lost to another worker.
    """
    event = (
        Event.objects.select_related("endpoint")
        .defer("body")
        .filter(pk=event_id)
        .first()
    )
    if (
        event is None
        or event.status != Event.Status.PROCESSING
        or event.claimed_by != worker
    ):
        return None
    return run_claimed(event)


def run_claimed(event: Event) -> str | None:
    """As :func:`run`, for an event just returned by ``claims.claim_events``."""
    outcomes = run_batch([event])
    return outcomes[0].status if outcomes else None


def run_batch(
    events: Sequence[Event], *, stopping: Callable[[], bool] = lambda: False
) -> list[Outcome]:
    """Run claimed events in as few commits as the time bound allows; the recorded outcomes.

    An event whose lease was lost has no outcome here, and neither has one left
    unstarted because ``stopping()`` turned true (it is given back).
    """
    recorded: list[Outcome] = []
    rest = list(events)
    while rest and not stopping():
        outcomes, rest = _run_group(rest, stopping)
        recorded += outcomes
    if rest:
        by_worker: dict[str, list[int]] = {}
        for event in rest:
            by_worker.setdefault(event.claimed_by, []).append(event.pk)
        for worker, ids in by_worker.items():
            release(ids, worker)
    return recorded


def _run_group(
    events: list[Event], stopping: Callable[[], bool]
) -> tuple[list[Outcome], list[Event]]:
    """One transaction: hold the events, run them until the time bound, record the outcomes."""
    outcomes: list[Outcome] = []
    rest: list[Event] = []
    started = time.monotonic()
    try:
        with transaction.atomic():
            held = hold(events)
            for index, event in enumerate(held):
                outcomes.append(run_one(event))
                if index + 1 < len(held) and (
                    time.monotonic() - started >= conf.BATCH_SECONDS or stopping()
                ):
                    rest = held[index + 1 :]
                    break
            finish(outcomes)
    except LeaseLost:
        logger.warning(
            "Events %s: lease lost before their outcome was recorded; they will run again",
            [outcome.event.pk for outcome in outcomes],
        )
        return [], rest
    return outcomes, rest


def hold(events: list[Event]) -> list[Event]:
    """The events still held by the worker that claimed them, locked until the batch commits.

    On PostgreSQL the row locks make the fence final: nobody can claim a
    locked row, so the outcome recorded at the end cannot be refused. SQLite
    has no row locks; there the fenced UPDATE at the end decides. Leases that
    have run half their time are renewed here, so that events waiting behind
    slow handlers of their batch are not taken over.
    """
    if connection.vendor == "postgresql":
        still: set[int] = set()
        with connection.cursor() as cursor:
            # Written out: this runs once per batch, and the ORM's compiling of
            # it cost more than all else a batch does in Python.
            for (worker, attempts), ids in by_claim(events).items():
                cursor.execute(LOCK_SQL, [ids, worker, attempts])
                still.update(pk for (pk,) in cursor.fetchall())
        events = [event for event in events if event.pk in still]
    now = timezone.now()
    half = now + timedelta(seconds=conf.LEASE_SECONDS / 2)
    if any(
        event.next_attempt_at is None or event.next_attempt_at < half
        for event in events
    ):
        lease_end = now + timedelta(seconds=conf.LEASE_SECONDS)
        Event.objects.filter(fence(events), status=Event.Status.PROCESSING).update(
            next_attempt_at=lease_end
        )
        for event in events:
            event.next_attempt_at = lease_end
    return events


def run_one(event: Event) -> Outcome:
    """Run an event's handlers (each in its own savepoint); its outcome, not yet recorded."""
    started = timezone.now()
    handlers = handlers_for(event.provider, event.event_type)
    error = ""
    with tracing.processing(event) as current:
        if not handlers:
            status = Event.Status.SKIPPED
        elif event.payload is None:
            status, error = Event.Status.FAILED, UNPARSED
        else:
            error = run_handlers(event, handlers)
            if not error:
                status = Event.Status.SUCCEEDED
            elif event.attempts >= conf.MAX_ATTEMPTS:
                status = Event.Status.FAILED
            else:
                status = Event.Status.RETRYING
        tracing.annotate(current, status=status)
        if error:
            tracing.failed(current, error)
    finished = timezone.now()
    metrics.handlers_ran(event.provider, status, (finished - started).total_seconds())
    outcome = Outcome(event, status, error, started, finished)
    if status == Event.Status.RETRYING:
        outcome.retry_at = finished + timedelta(seconds=backoff_seconds(event.attempts))
    return outcome


def run_handlers(event: Event, handlers: list[Handler]) -> str:
    """Run the handlers not yet done, in order; return the first failure, or "".

    Each handler runs in a savepoint: one that raises rolls back its own writes
    only. Those that succeeded are noted on the event, and that note commits
    with their writes, so a retry skips them.
    """
    for entry in handlers:
        if entry.name in event.completed_handlers:
            continue
        try:
            with (
                tracing.span("webhooks.handler", handler=entry.name),
                transaction.atomic(),
            ):
                entry.function(event)
        except Exception as exc:
            logger.warning(
                "Handler %s failed on event %s", entry.name, event.pk, exc_info=True
            )
            return describe(exc)
        event.completed_handlers = [*event.completed_handlers, entry.name]
    return ""


def describe(exc: BaseException) -> str:
    """Type, message and traceback, bounded: the head and the tail, where the cause is."""
    text = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}\n\n" + "".join(
        traceback.format_exception(exc)
    )
    limit = conf.ERROR_CHARS
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n[...]\n" + text[-half:]
