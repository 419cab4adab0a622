"""Recording what a batch's events came to: attempts, the fenced update, the backoff.

``attempts`` doubles as a fencing token: an outcome is recorded only while
the event is still held under the claim (worker and attempt) that ran it, so a
worker whose lease lapsed can never overwrite the outcome of the next one.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.db.models import Case, Field, Q, Value, When
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Attempt, Event
from webhooks.processing.announcements import announce_events

OUTCOMES: dict[str, str] = {
    Event.Status.SUCCEEDED: Attempt.Outcome.SUCCEEDED,
    Event.Status.SKIPPED: Attempt.Outcome.SKIPPED,
    Event.Status.RETRYING: Attempt.Outcome.FAILED,
    Event.Status.FAILED: Attempt.Outcome.FAILED,
}


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


def by_claim(events: Iterable[Event]) -> dict[tuple[str, int], list[int]]:
    """Event ids by the claim (worker and attempt) they are held under."""
    found: dict[tuple[str, int], list[int]] = {}
    for event in events:
        found.setdefault((event.claimed_by, event.attempts), []).append(event.pk)
    return found


def fence(events: Iterable[Event]) -> Q:
    """These events, as long as each is still held by the same claim (worker and attempt)."""
    held = Q(pk__in=[])
    for (worker, attempts), ids in by_claim(events).items():
        held |= Q(claimed_by=worker, attempts=attempts, pk__in=ids)
    return held


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
            fence(o.event for o in outcomes), status=Event.Status.PROCESSING
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
