"""Announcing status changes: ``event_status_changed`` for each event, after commit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial

from django.db import transaction

from webhooks.models import Event
from webhooks.signals import event_status_changed, send_after_commit

#: Columns a status announcement never needs (the body may run to megabytes).
NOT_ANNOUNCED = ("body", "headers", "payload")


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
