"""Running handlers on stored events: claim, run, record, retry.

The event row is the queue. ``next_attempt_at`` says when a pending or
retrying event is due and, while it is processing, when its lease ends: a
worker that dies simply stops renewing it, and the same query that finds due
events finds the event again. ``attempts`` doubles as a fencing token, so a
worker whose lease lapsed can never overwrite the outcome of the next one.
Every status change is announced with ``event_status_changed`` after commit.
"""

from __future__ import annotations

import logging
import random
import traceback
from collections.abc import Iterable, Mapping
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Attempt, Event
from webhooks.processing.handlers import Handler, handlers_for
from webhooks.signals import event_status_changed, send_after_commit

logger = logging.getLogger("webhooks")

OPEN = (Event.Status.PENDING, Event.Status.RETRYING, Event.Status.PROCESSING)
#: Columns a status announcement never needs (the body may run to megabytes).
NOT_ANNOUNCED = ("body", "headers", "payload")
UNPARSED = "The body did not parse as JSON or a form, so no handler can read it (it is stored as received)."


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Full jitter: uniform between 0 and base * 2^(attempt-1), capped."""
    ceiling = min(
        conf.RETRY_MAX_SECONDS, conf.RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0)
    )
    return (rng or random).uniform(0, ceiling)


def claim(limit: int, worker: str) -> list[int]:
    """Take up to ``limit`` due events for ``worker``, leased for ``WEBHOOKS_LEASE_SECONDS``.

    On PostgreSQL concurrent claimers skip each other's rows (``SKIP LOCKED``);
    SQLite serialises writers, so there one claimer at a time is still correct.
    """
    return [event.pk for event in claim_events(limit, worker)]


def claim_events(limit: int, worker: str) -> list[Event]:
    """As :func:`claim`, returning the claimed events loaded for :func:`run_claimed`.

    One transaction of two statements takes the whole batch, and the rows it
    read are the ones the handlers get: no per-event read follows. The body
    stays deferred (it may run to megabytes; a handler that reads it loads it).
    """
    now = timezone.now()
    earlier_open = Event.objects.filter(
        ordering_key=OuterRef("ordering_key"), id__lt=OuterRef("id"), status__in=OPEN
    )
    due = (
        Event.objects.filter(status__in=OPEN, next_attempt_at__lte=now)
        .exclude(~Q(ordering_key="") & Exists(earlier_open))
        .order_by("next_attempt_at", "id")
    )
    lease_end = now + timedelta(seconds=conf.LEASE_SECONDS)
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            # OF self: the joined endpoint rows stay unlocked for other claimers.
            due = due.select_for_update(skip_locked=True, of=("self",))
        claimed = list(due.select_related("endpoint").defer("body")[:limit])
        if not claimed:
            return []
        ids = [event.pk for event in claimed]
        Event.objects.filter(pk__in=ids).update(
            status=Event.Status.PROCESSING,
            claimed_by=worker,
            attempts=F("attempts") + 1,
            next_attempt_at=lease_end,
        )
        previous = {event.pk: event.status for event in claimed}
        for event in claimed:
            event.status, event.claimed_by = Event.Status.PROCESSING, worker
            event.attempts, event.next_attempt_at = event.attempts + 1, lease_end
        announce_events(claimed, previous)
    return claimed


def renew(ids: Iterable[int], worker: str) -> None:
    """Extend the leases ``worker`` holds, so long handlers are not taken over."""
    Event.objects.filter(
        pk__in=list(ids), status=Event.Status.PROCESSING, claimed_by=worker
    ).update(next_attempt_at=timezone.now() + timedelta(seconds=conf.LEASE_SECONDS))


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

    Each handler runs in its own transaction; one that raises rolls back its
    own writes only. Handlers that succeeded are not run again on a retry.
    Returns None when the lease was lost to another worker.
    """
    event = Event.objects.select_related("endpoint").filter(pk=event_id).first()
    if (
        event is None
        or event.status != Event.Status.PROCESSING
        or event.claimed_by != worker
    ):
        return None
    return run_claimed(event)


def run_claimed(event: Event) -> str | None:
    """As :func:`run`, for an event just returned by :func:`claim_events`.

    Nothing is read again: the fence in :func:`finish` is what keeps a worker
    whose lease lapsed from recording an outcome.
    """
    attempt = Attempt.objects.create(
        event=event, number=event.attempts, worker=event.claimed_by
    )
    handlers = handlers_for(event.provider, event.event_type)
    if not handlers:
        return finish(event, attempt, Event.Status.SKIPPED, "")
    if event.payload is None:
        return finish(event, attempt, Event.Status.FAILED, UNPARSED)
    error = run_handlers(event, handlers)
    if not error:
        return finish(event, attempt, Event.Status.SUCCEEDED, "")
    final = event.attempts >= conf.MAX_ATTEMPTS
    return finish(
        event, attempt, Event.Status.FAILED if final else Event.Status.RETRYING, error
    )


def run_handlers(event: Event, handlers: list[Handler]) -> str:
    """Run the handlers not yet done, in order; return the first failure, or ""."""
    for entry in handlers:
        if entry.name in event.completed_handlers:
            continue
        try:
            with transaction.atomic():
                entry.function(event)
        except Exception as exc:
            logger.warning(
                "Handler %s failed on event %s", entry.name, event.pk, exc_info=True
            )
            return describe(exc)
        event.completed_handlers = [*event.completed_handlers, entry.name]
        if entry is not handlers[-1]:
            # Saved as we go, so a retry skips it; finish() saves the last one.
            Event.objects.filter(pk=event.pk, claimed_by=event.claimed_by).update(
                completed_handlers=event.completed_handlers
            )
    return ""


def finish(event: Event, attempt: Attempt, status: str, error: str) -> str | None:
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": status,
        "claimed_by": "",
        "last_error": error,
        "completed_handlers": event.completed_handlers,
    }
    if status == Event.Status.RETRYING:
        fields["next_attempt_at"] = now + timedelta(
            seconds=backoff_seconds(event.attempts)
        )
    else:
        fields["next_attempt_at"] = None
        fields["processed_at"] = now
    outcome = (
        Attempt.Outcome.SUCCEEDED
        if status == Event.Status.SUCCEEDED
        else (
            Attempt.Outcome.SKIPPED
            if status == Event.Status.SKIPPED
            else Attempt.Outcome.FAILED
        )
    )
    with transaction.atomic():
        # The fence: only the holder of this very attempt may record its outcome.
        updated = Event.objects.filter(
            pk=event.pk,
            status=Event.Status.PROCESSING,
            claimed_by=event.claimed_by,
            attempts=event.attempts,
        ).update(**fields)
        Attempt.objects.filter(pk=attempt.pk).update(
            finished_at=now, outcome=outcome, error=error
        )
        if not updated:
            logger.warning(
                "Event %s: lease lost before its outcome was recorded", event.pk
            )
            return None
        for name, value in fields.items():
            setattr(event, name, value)
        announce_events([event], {event.pk: Event.Status.PROCESSING})
    return status


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
