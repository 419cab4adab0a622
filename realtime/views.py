"""The live dashboard's admin pages: the page itself and the event detail it fetches.

Both are wrapped with ``admin.site.admin_view`` in ``realtime.urls``, which sends
anonymous and non-staff users to the admin login; the permission checks here
come on top of that.
"""

from __future__ import annotations

import base64
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from realtime.conf import conf
from realtime.queries import REPLAY_PERMISSION, VIEW_PERMISSION
from realtime.rates import report as rates_report
from realtime.wire import event_summary, rejection_summary
from webhooks.models import Endpoint, Event, Rejection
from webhooks.observability import tallies
from webhooks.processing import pausing

#: Where the consumer listens (CONTRACT.md section 7); the page builds ws: or wss: from it.
WEBSOCKET_PATH = "/ws/webhooks/"
#: The detail URL with a placeholder id, which the page's script swaps for a real one.
ID_PLACEHOLDER = 0
#: Pausing and resuming from the page.
CHANGE_ENDPOINT_PERMISSION = "webhooks.change_endpoint"
#: The pause URL with a placeholder slug, which the script swaps for a real one.
SLUG_PLACEHOLDER = "endpoint-slug"
#: Rejections rendered with the page; the socket only pushes new ones.
RECENT_REJECTIONS = 20


def live(request: HttpRequest) -> HttpResponse:
    """The live page; staff without ``webhooks.view_event`` get 403."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "Live events",
        "websocket_path": WEBSOCKET_PATH,
        # The page learns URLs through data-attributes: no inline script, so a
        # strict Content-Security-Policy holds.
        "detail_url": reverse("realtime:event_detail", args=[ID_PLACEHOLDER]),
        "rates_url": reverse("realtime:rates"),
        "rates_seconds": conf.RATES_SECONDS,
        "processing_url": reverse(
            "realtime:endpoint_processing", args=[SLUG_PLACEHOLDER, "pause"]
        ),
        "can_pause": request.user.has_perm(CHANGE_ENDPOINT_PERMISSION),
        "events_url": reverse("admin:webhooks_event_changelist"),
        "can_replay": request.user.has_perm(REPLAY_PERMISSION),
        "statuses": Event.Status.values,
        "rejections": recent_rejections(),
    }
    return render(request, "realtime/live.html", context)


def rates(request: HttpRequest) -> JsonResponse:
    """The page's server-computed figures (:mod:`realtime.rates`), polled by its script."""
    if not request.user.has_perm(VIEW_PERMISSION):
        return JsonResponse({"error": "forbidden"}, status=403)
    # This process's counts not yet written: a single-process site sees them now.
    tallies.flush()
    return JsonResponse(rates_report())


@require_POST
def endpoint_processing(request: HttpRequest, slug: str, action: str) -> JsonResponse:
    """Pause or resume an endpoint's processing from the page (``webhooks.change_endpoint``)."""
    if not request.user.has_perm(CHANGE_ENDPOINT_PERMISSION):
        return JsonResponse({"error": "forbidden"}, status=403)
    endpoint = Endpoint.objects.filter(slug=slug).first()
    if endpoint is None:
        return JsonResponse({"error": "not_found"}, status=404)
    if action == "pause":
        who = request.user.get_username()
        changed = pausing.pause(endpoint, f"paused on the live page by {who}")
    else:
        changed = pausing.resume(endpoint)
    return JsonResponse(
        {
            "endpoint": endpoint.slug,
            "paused": endpoint.paused,
            "paused_reason": endpoint.paused_reason,
            "changed": changed,
        }
    )


def recent_rejections() -> list[dict[str, Any]]:
    rejections = Rejection.objects.select_related("endpoint").order_by("-id")
    return [
        rejection_summary(r.endpoint, r.reason, r.source_ip, r.at)
        for r in rejections[:RECENT_REJECTIONS]
    ]


def event_detail(request: HttpRequest, id: int) -> JsonResponse:
    """One event's headers, body and payload, as JSON data the page inserts as text."""
    if not request.user.has_perm(VIEW_PERMISSION):
        return JsonResponse({"error": "forbidden"}, status=403)
    event = Event.objects.select_related("endpoint").filter(pk=id).first()
    if event is None:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse(detail(event))


def detail(event: Event) -> dict[str, Any]:
    # Headers were redacted when stored (Cookie, Authorization), and secrets live
    # on the endpoint, which is never read here.
    body = bytes(event.body or b"")  # PostgreSQL hands back a memoryview.
    return {
        "event": event_summary(event),
        "headers": event.headers,
        "body": body.decode("utf-8", errors="replace"),
        "body_base64": None if is_utf8(body) else base64.b64encode(body).decode(),
        "payload": event.payload,
        "admin_url": reverse("admin:webhooks_event_change", args=[event.pk]),
    }


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
