"""Replay: queue stored events to be processed again from the start."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from django.db import transaction
from django.utils import timezone

from webhooks.models import Event
from webhooks.processing import dispatch
from webhooks.processing.announcements import announce


@dataclass
class ReplayReport:
    queued: list[int] = field(default_factory=list)
    #: Being processed right now: left to finish, not replayed.
    busy: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def replay(event_id: int) -> Event | None:
    """Queue an event to be processed again from the start; None when it does not exist.

    The raw delivery is processed again (the provider is not asked); attempts
    start from zero so a failed event gets its full retry budget, and the
    Attempt history is kept. An event being processed right now is left alone.
    """
    report = replay_many([event_id])
    if report.missing:
        return None
    return Event.objects.select_related("endpoint").get(pk=event_id)


def replay_many(ids: Iterable[int]) -> ReplayReport:
    """Replay each event as :func:`replay` does, waking processing once at the end."""
    report = ReplayReport()
    for event_id in ids:
        getattr(report, _requeue(event_id)).append(event_id)
    if report.queued:
        dispatch.new_work(report.queued)
    return report


def _requeue(event_id: int) -> Literal["queued", "busy", "missing"]:
    with transaction.atomic():
        status = (
            Event.objects.select_for_update()
            .filter(pk=event_id)
            .values_list("status", flat=True)
            .first()
        )
        if status is None:
            return "missing"
        if status == Event.Status.PROCESSING:
            return "busy"
        Event.objects.filter(pk=event_id).update(
            status=Event.Status.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            claimed_by="",
            processed_at=None,
            completed_handlers=[],
        )
        announce([event_id], {event_id: status})
    return "queued"
