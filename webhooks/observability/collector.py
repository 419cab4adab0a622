"""Gauges read from the database at scrape time: the queue as it stands.

Counting in the processes would be wrong as soon as there are several of them
(and after every restart); the event table is the queue, so a scrape asks it.
Both queries use indexes: the status index and the due-events index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone

from webhooks.models import Endpoint, Event

logger = logging.getLogger("webhooks")

#: Statuses whose events are waiting to run (processing ones come back when their lease lapses).
DUE = (Event.Status.PENDING, Event.Status.RETRYING, Event.Status.PROCESSING)


def queue_lag_seconds() -> float:
    """Age of the oldest due event: how long the longest-waiting work has waited.

    Paused endpoints' events are left out: they wait on purpose.
    """
    now = timezone.now()
    paused = Endpoint.objects.filter(paused=True).values("pk")
    oldest = (
        Event.objects.filter(status__in=DUE, next_attempt_at__lte=now)
        .exclude(endpoint_id__in=paused)
        .aggregate(oldest=Min("next_attempt_at"))["oldest"]
    )
    return max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0


def events_by_status() -> dict[str, int]:
    counts = dict.fromkeys(Event.Status.values, 0)
    for row in Event.objects.order_by().values("status").annotate(count=Count("id")):
        counts[row["status"]] = row["count"]
    return counts


class QueueCollector:
    """A prometheus_client collector; a failing database leaves the gauges out, not the scrape."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            counts = events_by_status()
            lag = queue_lag_seconds()
        except DatabaseError:
            logger.warning("Metrics: the event table could not be read", exc_info=True)
            return
        by_status = GaugeMetricFamily(
            "webhooks_events",
            "Stored events by status (failed: dead events).",
            labels=["status"],
        )
        for status, count in counts.items():
            by_status.add_metric([status], count)
        yield by_status
        yield GaugeMetricFamily(
            "webhooks_queue_lag_seconds",
            "Age of the oldest due event (0: nothing waits).",
            value=lag,
        )
        yield GaugeMetricFamily(
            "webhooks_dead_events",
            "Events in failed status, waiting for a replay or a prune.",
            value=counts[Event.Status.FAILED],
        )
