"""What happens to stored events after ingest.

Every status change goes through here and is announced with
``event_status_changed`` after its transaction commits.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.utils import timezone

from webhooks.models import Event
from webhooks.signals import event_status_changed, send_after_commit


def replay(event_id: int) -> Event | None:
    """Queue an event to be processed again from the start; None when it does not exist.

    Attempts start from zero, so a failed event gets its full retry budget
    again. An event being processed right now is left to finish.
    """
    with transaction.atomic():
        event = (
            Event.objects.select_for_update()
            .select_related("endpoint")
            .filter(pk=event_id)
            .first()
        )
        if event is None or event.status == Event.Status.PROCESSING:
            return event
        previous = event.status
        event.status = Event.Status.PENDING
        event.attempts = 0
        event.next_attempt_at = timezone.now()
        event.locked_until = None
        event.processed_at = None
        event.save(
            update_fields=[
                "status",
                "attempts",
                "next_attempt_at",
                "locked_until",
                "processed_at",
            ]
        )
        transaction.on_commit(
            partial(
                send_after_commit,
                event_status_changed,
                sender=Event,
                event=event,
                previous=previous,
            )
        )
    return event
