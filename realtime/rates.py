"""The live page's figures, computed by the server: rates per endpoint, the chart, the queue.

Counts come from the per-minute tallies every server and worker process adds
to (:mod:`webhooks.observability.tallies`), so they hold across processes and
restarts. Windows are whole minutes: "5 minutes" is the current minute and the
four before it. One grouped query gives every endpoint's counts for all three
windows; the chart reads at most a day of minutes, summed over endpoints.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from realtime.wire import iso
from webhooks.models import Endpoint, Event, Tally
from webhooks.observability import collector

KINDS = ("received", "failed", "rejected", "ignored")
#: Window name: minutes it spans (the current one included).
WINDOWS = {"5m": 5, "1h": 60, "1d": 1440}
#: Chart range name: (minutes it spans, minutes per point).
RANGES = {"15m": (15, 1), "24h": (1440, 15)}
CHARTED = ("received", "failed", "rejected")


def this_minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def endpoint_rates(now: datetime) -> list[dict[str, Any]]:
    """Every endpoint with its counts per window, and whether it is paused."""
    minute = this_minute(now)
    starts = {
        name: minute - timedelta(minutes=span - 1) for name, span in WINDOWS.items()
    }
    aggregates = {
        f"{kind}_{name}": Sum(kind, filter=Q(minute__gte=start))
        for name, start in starts.items()
        for kind in KINDS
    }
    rows: dict[int, dict[str, Any]] = {
        row["endpoint_id"]: dict(row)
        for row in Tally.objects.filter(minute__gte=starts["1d"])
        .order_by()
        .values("endpoint_id")
        .annotate(**aggregates)
    }
    found = []
    for endpoint in Endpoint.objects.order_by("slug"):
        row: dict[str, Any] = rows.get(endpoint.pk, {})
        found.append(
            {
                "endpoint": endpoint.slug,
                "provider": endpoint.provider,
                "active": endpoint.is_active,
                "paused": endpoint.paused,
                "paused_reason": endpoint.paused_reason,
                "unhealthy": endpoint.unhealthy_since is not None,
                "counts": {
                    name: {kind: row.get(f"{kind}_{name}") or 0 for kind in KINDS}
                    for name in WINDOWS
                },
            }
        )
    return found


def series(now: datetime, range_name: str) -> list[dict[str, Any]]:
    """Points of the chart, oldest first: per second rates of received, failed, rejected."""
    span, step = RANGES[range_name]
    minute = this_minute(now)
    # Points start on multiples of the step, so a point's minutes never move.
    last = minute - timedelta(minutes=minute.minute % step)
    first = last - timedelta(minutes=span - step)
    sums: dict[datetime, dict[str, Any]] = {
        row["minute"]: dict(row)
        for row in Tally.objects.filter(minute__gte=first)
        .order_by()
        .values("minute")
        .annotate(**{kind: Sum(kind) for kind in CHARTED})
    }
    points = []
    start = first
    while start <= last:
        totals = dict.fromkeys(CHARTED, 0)
        for offset in range(step):
            point = sums.get(start + timedelta(minutes=offset))
            if point:
                for kind in CHARTED:
                    totals[kind] += point[kind] or 0
        points.append(
            {
                "at": iso(start),
                **{kind: round(totals[kind] / (step * 60), 4) for kind in CHARTED},
                "count": totals["received"],
            }
        )
        start += timedelta(minutes=step)
    return points


def queue(now: datetime) -> dict[str, Any]:
    by_status = dict(
        Event.objects.filter(
            status__in=(
                Event.Status.PENDING,
                Event.Status.RETRYING,
                Event.Status.PROCESSING,
                Event.Status.FAILED,
            )
        )
        .order_by()
        .values_list("status")
        .annotate(count=Count("pk"))
    )
    return {
        "lag_seconds": round(collector.queue_lag_seconds(), 1),
        "waiting": by_status.get(Event.Status.PENDING, 0)
        + by_status.get(Event.Status.RETRYING, 0),
        "processing": by_status.get(Event.Status.PROCESSING, 0),
        "dead": by_status.get(Event.Status.FAILED, 0),
    }


def report(now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    return {
        "at": iso(now),
        "endpoints": endpoint_rates(now),
        "series": {name: series(now, name) for name in RANGES},
        "queue": queue(now),
    }
