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

from realtime.queries import REPLAY_PERMISSION, VIEW_PERMISSION
from realtime.wire import event_summary, rejection_summary
from webhooks.models import Event, Rejection

#: Where the consumer listens (CONTRACT.md section 7); the page builds ws: or wss: from it.
WEBSOCKET_PATH = "/ws/webhooks/"
#: The detail URL with a placeholder id, which the page's script swaps for a real one.
ID_PLACEHOLDER = 0
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
        "events_url": reverse("admin:webhooks_event_changelist"),
        "can_replay": request.user.has_perm(REPLAY_PERMISSION),
        "statuses": Event.Status.values,
        "rejections": recent_rejections(),
    }
    return render(request, "realtime/live.html", context)


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
