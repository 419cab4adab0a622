"""Claiming events: the due query, the claim, and renewing or giving back a lease.

The event row is the queue. ``next_attempt_at`` says when a pending or
retrying event is due and, while it is processing, when its lease ends: a
worker that dies simply stops renewing it, and the same query that finds due
events finds the event again. ``attempts`` doubles as a fencing token (see
``outcomes``), so a worker whose lease lapsed can never overwrite the outcome
of the next one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Endpoint, Event
from webhooks.processing.announcements import announce, announce_events

OPEN = (Event.Status.PENDING, Event.Status.RETRYING, Event.Status.PROCESSING)


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
    """As :func:`claim`, returning the claimed events loaded for ``batches.run_batch``.

    One committed transaction of two statements takes the whole batch, and the
    rows it read are the ones the handlers get: no per-event read follows. The
    body stays deferred (it may run to megabytes; a handler that reads it loads
    it). ``only`` limits the claim to these events (a task naming its event).
    """
    now = timezone.now()
    named = None if only is None else list(only)
    lease_end = now + timedelta(seconds=conf.LEASE_SECONDS)
    with transaction.atomic():
        if named is None:  # a named claim reads its few rows by primary key
            in_claim_order()
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


def in_claim_order() -> None:
    """For the rest of this transaction on PostgreSQL, read due events in the due
    index's order rather than gather and sort them.

    Statistics older than a burst (a backlog that arrived since the last ANALYZE)
    make the planner expect a few due rows, so it fetches every due row and sorts
    them: a claim of 200 from a backlog of 100,000 took 90 ms and spilled its sort
    to disk. Read in index order, a claim touches the rows it takes, whatever the
    statistics say.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_sort = off")


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
