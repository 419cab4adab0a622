"""The event summary of CONTRACT.md section 7, shared by the dashboard and the events API.

Only JSON- and msgpack-safe primitives: no datetimes, no model instances.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from webhooks.models import Event

#: Event fields a summary reads; the body itself is never loaded for one.
SUMMARY_FIELDS = (
    "id",
    "endpoint__slug",
    "provider",
    "event_type",
    "delivery_id",
    "status",
    "attempts",
    "received_at",
    "processed_at",
    "last_error",
    "size",
)
LAST_ERROR_CHARS = 500


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def event_summary(event: Event) -> dict[str, Any]:
    """Never a secret or a signature header: those are not summary fields."""
    return {
        "id": event.pk,
        "endpoint": event.endpoint.slug,
        "provider": event.provider,
        "event_type": event.event_type,
        "delivery_id": event.delivery_id,
        "status": event.status,
        "attempts": event.attempts,
        "received_at": iso(event.received_at),
        "processed_at": iso(event.processed_at),
        "last_error": event.last_error[:LAST_ERROR_CHARS],
        "size": event.size,
    }


def summaries(queryset: Any) -> list[dict[str, Any]]:
    """Summaries of a queryset of events, loading only the fields they show."""
    return [
        event_summary(event)
        for event in queryset.select_related("endpoint").only(*SUMMARY_FIELDS)
    ]
