"""``GET /webhooks/health/``: what the database, the channel layer and the queue look like.

It reports and never starts anything."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.db.models import Min
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from webhooks.models import Endpoint, Event
from webhooks.observability import collector

logger = logging.getLogger("webhooks")

LAYER_TIMEOUT_SECONDS = 1.0
WAITING = (Event.Status.PENDING, Event.Status.RETRYING)


def database_report() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        waiting = Event.objects.filter(status__in=WAITING)
        summary = waiting.aggregate(oldest=Min("received_at"))
        pending = waiting.count()
        lag = collector.queue_lag_seconds()
        dead = Event.objects.filter(status=Event.Status.FAILED).count()
        paused = list(
            Endpoint.objects.filter(paused=True).values_list("slug", flat=True)
        )
    except DatabaseError:
        logger.warning("Health check: database unavailable", exc_info=True)
        return {
            "database": "error",
            "pending": None,
            "oldest_pending_seconds": None,
            "queue_lag_seconds": None,
            "dead": None,
            "paused_endpoints": None,
        }
    oldest = summary["oldest"]
    age = round((timezone.now() - oldest).total_seconds(), 3) if oldest else 0.0
    return {
        "database": "ok",
        "pending": pending,
        "oldest_pending_seconds": age,
        # Age of the oldest event due now (paused endpoints' events left out).
        "queue_lag_seconds": round(lag, 3),
        "dead": dead,
        "paused_endpoints": paused,
    }


async def channel_layer_report() -> str:
    """ "none" without Channels or a layer, else whether a message round-trips in time."""
    try:
        from channels.layers import get_channel_layer
    except ImportError:
        return "none"
    layer = get_channel_layer()
    if layer is None:
        return "none"
    try:
        async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
            channel = await layer.new_channel()
            await layer.send(channel, {"type": "health.ping"})
            await layer.receive(channel)
    except Exception:
        logger.warning("Health check: channel layer unavailable", exc_info=True)
        return "error"
    return "ok"


async def check() -> dict[str, Any]:
    report = await sync_to_async(database_report)()
    return {
        "database": report["database"],
        "channel_layer": await channel_layer_report(),
        "pending": report["pending"],
        "oldest_pending_seconds": report["oldest_pending_seconds"],
        "queue_lag_seconds": report["queue_lag_seconds"],
        "dead": report["dead"],
        "paused_endpoints": report["paused_endpoints"],
    }


# Any other method gets JSON, as everything under the webhooks URLs does; csrf-exempt
# so that a POST is answered 405 rather than refused by the CSRF check in HTML.
@csrf_exempt
@login_not_required
async def health(request: HttpRequest) -> JsonResponse:
    if request.method != "GET":
        response = JsonResponse({"error": "method_not_allowed"}, status=405)
        response["Allow"] = "GET"
        return response
    report = await check()
    return JsonResponse(report, status=200 if report["database"] == "ok" else 503)
