"""Running handlers on stored events: claim, run, record, retry.

The event row is the queue. ``next_attempt_at`` says when a pending or
retrying event is due and, while it is processing, when its lease ends: a
worker that dies simply stops renewing it, and the same query that finds due
events finds the event again. ``attempts`` doubles as a fencing token, so a
worker whose lease lapsed can never overwrite the outcome of the next one.

Claimed events run in batches: one transaction holds a batch's events (row
locks on PostgreSQL), runs each event's handlers in savepoints, and records
every outcome with one INSERT of attempts and one fenced UPDATE of the events.
A handler's database writes therefore commit together with the record that it
ran: a killed worker never re-runs a handler whose writes committed, and never
loses one whose writes did not. A batch commits when it has run its events or
after ``WEBHOOKS_BATCH_SECONDS``, whichever comes first.

Every status change is announced with ``event_status_changed`` after commit.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Case, Exists, F, Field, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Attempt, Endpoint, Event
from webhooks.observability import metrics, tracing
from webhooks.processing.handlers import Handler, handlers_for
from webhooks.signals import event_status_changed, send_after_commit

logger = logging.getLogger("webhooks")

OPEN = (Event.Status.PENDING, Event.Status.RETRYING, Event.Status.PROCESSING)
#: Columns a status announcement never needs (the body may run to megabytes).
NOT_ANNOUNCED = ("body", "headers", "payload")
UNPARSED = "The body did not parse as JSON or a form, so no handler can read it (it is stored as received)."
OUTCOMES: dict[str, str] = {
    Event.Status.SUCCEEDED: Attempt.Outcome.SUCCEEDED,
    Event.Status.SKIPPED: Attempt.Outcome.SKIPPED,
    Event.Status.RETRYING: Attempt.Outcome.FAILED,
    Event.Status.FAILED: Attempt.Outcome.FAILED,
}


#: PostgreSQL: lock the rows of a batch that are still held under one claim.
LOCK_SQL = f"""
    SELECT id FROM {Event._meta.db_table}
    WHERE id = ANY(%s) AND status = '{Event.Status.PROCESSING}'
        AND claimed_by = %s AND attempts = %s
    FOR UPDATE
"""


class LeaseLost(Exception):
    """A batch's outcome could not be recorded: some event is no longer this worker's."""


@dataclass
class Outcome:
    """What one run of an event's handlers came to, before it is recorded."""

    event: Event
    status: str
    error: str
    started_at: datetime
    finished_at: datetime
    #: When a retrying event is due again.
    retry_at: datetime | None = None


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Full jitter: uniform between 0 and base * 2^(attempt-1), capped."""
    ceiling = min(
        conf.RETRY_MAX_SECONDS, conf.RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0)
    )
    return (rng or random).uniform(0, ceiling)


def due(now: datetime) -> QuerySet[Event]:
    """Open events whose time has come, in claim order: what any claim may take.

    An event with an ordering key waits while an earlier event of its key is
    open. That check runs only for events that have a key, and reads the
    partial index of open keyed events, so the query stays cheap however many
    events are stored or waiting. (Conditions that hold events back belong here.)
    """
    earlier_open = Event.objects.filter(
        ~Q(ordering_key=""),
        status__in=OPEN,
        ordering_key=OuterRef("ordering_key"),
        id__lt=OuterRef("id"),
    )
    # A paused endpoint's events wait (webhooks.processing.pausing); few endpoints are
    # paused at once, so the subquery is a short list.
    paused = Endpoint.objects.filter(paused=True).values("pk")
    return (
        Event.objects.filter(status__in=OPEN, next_attempt_at__lte=now)
        .filter(Q(ordering_key="") | ~Exists(earlier_open))
        .exclude(endpoint_id__in=paused)
        .order_by("next_attempt_at", "id")
    )


def claim(limit: int, worker: str) -> list[int]:
    """Take up to ``limit`` due events for ``worker``, leased for ``WEBHOOKS_LEASE_SECONDS``.

    On PostgreSQL concurrent claimers skip each other's rows (``SKIP LOCKED``);
    SQLite serialises writers, so there one claimer at a time is still correct.
    """
    return [event.pk for event in claim_events(limit, worker)]


def claim_events(
    limit: int, worker: str, *, only: Iterable[int] | None = None
) -> list[Event]:
    """As :func:`claim`, returning the claimed events loaded for :func:`run_batch`.

    One committed transaction of two statements takes the whole batch, and the
    rows it read are the ones the handlers get: no per-event read follows. The
    body stays deferred (it may run to megabytes; a handler that reads it loads
    it). ``only`` limits the claim to these events (a task naming its event).
    """
    now = timezone.now()
    named = None if only is None else list(only)
    lease_end = now + timedelta(seconds=conf.LEASE_SECONDS)
    with transaction.atomic():
        sql, params = _claim_statement(limit, named, now)
        claimed = list(Event.objects.raw(sql, params))
        if not claimed:
            return []
        # The few endpoints of a batch, read once and shared by its events.
        wanted = sorted({event.endpoint_id for event in claimed})
        endpoints = {
            endpoint.pk: endpoint
            for endpoint in Endpoint.objects.raw(
                f"SELECT * FROM {Endpoint._meta.db_table} WHERE id IN ({_marks(wanted)})",
                wanted,
            )
        }
        for event in claimed:
            Event.endpoint.field.set_cached_value(event, endpoints[event.endpoint_id])
        ids = [event.pk for event in claimed]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Event._meta.db_table} SET status = %s, claimed_by = %s,"
                f" attempts = attempts + 1, next_attempt_at = %s WHERE id IN ({_marks(ids)})",
                [Event.Status.PROCESSING, worker, _as_param(lease_end), *ids],
            )
        previous = {event.pk: event.status for event in claimed}
        for event in claimed:
            event.status, event.claimed_by = Event.Status.PROCESSING, worker
            event.attempts, event.next_attempt_at = event.attempts + 1, lease_end
        announce_events(claimed, previous)
    return claimed


#: Stands for the time and the named ids in a claim statement compiled once.
_NOW = datetime(2000, 1, 1, 0, 0, 0, 424242, tzinfo=UTC)
_FIRST_ID = -424242
#: Claim statements by database, vendor, limit and number of named events:
#: building and compiling the due query cost more than running it.
_statements: dict[
    tuple[str, str, int, int | None], tuple[str, list[Any], list[int]]
] = {}


def _claim_statement(
    limit: int, named: list[int] | None, now: datetime
) -> tuple[str, list[Any]]:
    """The SELECT of a claim (rows locked, others' locked rows skipped) and its parameters."""
    key = (
        connection.alias,
        connection.vendor,
        limit,
        None if named is None else len(named),
    )
    if key not in _statements:
        candidates = due(_NOW)
        if named is not None:
            placeholders = [_FIRST_ID - n for n in range(len(named))]
            candidates = candidates.filter(pk__in=placeholders)
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        query = candidates.defer("body")[:limit].query
        sql, compiled = query.get_compiler(connection=connection).as_sql()
        stand_ins = {_NOW, connection.ops.adapt_datetimefield_value(_NOW)}
        slots = [
            index
            for index, value in enumerate(compiled)
            if not isinstance(value, bool) and value in stand_ins
        ]
        if len(slots) != 1:
            raise RuntimeError("The claim statement's time was not found once")
        _statements[key] = (sql, list(compiled), slots)
    sql, compiled, slots = _statements[key]
    params = list(compiled)
    params[slots[0]] = _as_param(now)
    if named is not None:
        ids = {_FIRST_ID - n: event_id for n, event_id in enumerate(named)}
        params = [
            ids.get(value, value) if type(value) is int else value for value in params
        ]
    return sql, params


def _marks(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _as_param(moment: datetime) -> Any:
    """A time as a parameter of a statement written out (SQLite takes text)."""
    if connection.vendor == "postgresql":
        return moment
    return connection.ops.adapt_datetimefield_value(moment)


def renew(ids: Iterable[int], worker: str) -> None:
    """Extend the leases ``worker`` holds, so long handlers are not taken over.

    Rows a running batch has locked are skipped, not waited for: nobody else
    can claim a locked row, and its batch records its outcome soon.
    """
    held = Event.objects.filter(
        pk__in=list(ids), status=Event.Status.PROCESSING, claimed_by=worker
    )
    if connection.features.has_select_for_update_skip_locked:
        held = Event.objects.filter(
            pk__in=held.select_for_update(skip_locked=True).values("pk")
        )
    with transaction.atomic():
        held.update(
            next_attempt_at=timezone.now() + timedelta(seconds=conf.LEASE_SECONDS)
        )


def release(ids: Iterable[int], worker: str) -> None:
    """Give back claimed events that were never started (a worker stopping)."""
    with transaction.atomic():
        held = Event.objects.filter(
            pk__in=list(ids), status=Event.Status.PROCESSING, claimed_by=worker
        )
        previous = dict.fromkeys(
            held.values_list("id", flat=True), Event.Status.PROCESSING
        )
        held.update(
            status=Event.Status.PENDING,
            claimed_by="",
            attempts=F("attempts") - 1,
            next_attempt_at=timezone.now(),
        )
        announce(previous, previous)


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
    """As :func:`run`, for an event just returned by :func:`claim_events`."""
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
            for (worker, attempts), ids in _claims(events).items():
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
        Event.objects.filter(_fence(events), status=Event.Status.PROCESSING).update(
            next_attempt_at=lease_end
        )
        for event in events:
            event.next_attempt_at = lease_end
    return events


def _claims(events: Iterable[Event]) -> dict[tuple[str, int], list[int]]:
    """Event ids by the claim (worker and attempt) they are held under."""
    by_claim: dict[tuple[str, int], list[int]] = {}
    for event in events:
        by_claim.setdefault((event.claimed_by, event.attempts), []).append(event.pk)
    return by_claim


def _fence(events: Iterable[Event]) -> Q:
    """These events, as long as each is still held by the same claim (worker and attempt)."""
    fence = Q(pk__in=[])
    for (worker, attempts), ids in _claims(events).items():
        fence |= Q(claimed_by=worker, attempts=attempts, pk__in=ids)
    return fence


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


def finish(outcomes: list[Outcome]) -> None:
    """Record a batch's outcomes: one INSERT of attempts, one fenced UPDATE of the events.

    Raises :class:`LeaseLost` (rolling the batch back with its handlers' writes)
    when an event is no longer held by the worker that ran it.
    """
    if not outcomes:
        return
    Attempt.objects.bulk_create(
        Attempt(
            event=outcome.event,
            number=outcome.event.attempts,
            worker=outcome.event.claimed_by,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
            outcome=OUTCOMES[outcome.status],
            error=outcome.error,
        )
        for outcome in outcomes
    )
    # One time for the batch: the events were processed when their outcome committed.
    now = timezone.now()
    rows = {outcome.event.pk: _recorded_fields(outcome, now) for outcome in outcomes}
    updated = (
        # The fence: only the holder of this very attempt may record its outcome.
        Event.objects.filter(
            _fence(o.event for o in outcomes), status=Event.Status.PROCESSING
        ).update(**_per_row(rows))
    )
    if updated != len(outcomes):
        raise LeaseLost
    for outcome in outcomes:
        for name, value in rows[outcome.event.pk].items():
            setattr(outcome.event, name, value)
    announce_events(
        [outcome.event for outcome in outcomes],
        dict.fromkeys(rows, Event.Status.PROCESSING),
    )


def _recorded_fields(outcome: Outcome, now: datetime) -> dict[str, Any]:
    event = outcome.event
    return {
        "status": outcome.status,
        "claimed_by": "",
        "last_error": outcome.error,
        "completed_handlers": event.completed_handlers,
        "next_attempt_at": outcome.retry_at,
        "processed_at": event.processed_at
        if outcome.status == Event.Status.RETRYING
        else now,
    }


def _per_row(rows: Mapping[int, dict[str, Any]]) -> dict[str, Any]:
    """UPDATE values: the value where every row agrees (the usual case), else a CASE
    with one branch per distinct value."""
    fields: dict[str, Any] = {}
    for name in next(iter(rows.values())):
        by_value: dict[str, tuple[Any, list[int]]] = {}
        for pk, row in rows.items():
            key = repr(row[name])
            by_value.setdefault(key, (row[name], []))[1].append(pk)
        if len(by_value) == 1:
            fields[name] = next(iter(rows.values()))[name]
            continue
        field = cast("Field[Any, Any]", Event._meta.get_field(name))
        fields[name] = Case(
            *(
                When(pk__in=ids, then=Value(value, output_field=field))
                for value, ids in by_value.values()
            ),
            output_field=field,
        )
    return fields


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


def announce(ids: Iterable[int], previous: Mapping[int, str]) -> None:
    """Send ``event_status_changed`` for each event after the transaction commits."""
    transaction.on_commit(partial(_send_changes, list(ids), previous))


def announce_events(events: list[Event], previous: Mapping[int, str]) -> None:
    """As :func:`announce`, for events already loaded and updated in memory."""
    transaction.on_commit(partial(_send, events, previous))


def _send_changes(ids: list[int], previous: Mapping[int, str]) -> None:
    if event_status_changed.has_listeners(Event):
        events = (
            Event.objects.select_related("endpoint")
            .defer(*NOT_ANNOUNCED)
            .filter(pk__in=ids)
        )
        _send(list(events.order_by("id")), previous)


def _send(events: list[Event], previous: Mapping[int, str]) -> None:
    for event in events:
        send_after_commit(
            event_status_changed,
            sender=Event,
            event=event,
            previous=previous.get(event.pk, ""),
        )
