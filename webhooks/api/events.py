"""``events/``, ``events/<id>/`` and ``events/<id>/replay/``: reads by cursor, and replay."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from webhooks.api import cursor, params, responses
from webhooks.api.auth import token_required
from webhooks.api.summaries import SUMMARY_FIELDS, event_summary
from webhooks.models import ApiToken, Event
from webhooks.processing import replay as replays


# csrf_exempt: a bearer token, unlike a cookie, is never sent by a browser on
# its own, so a cross-site form cannot borrow it.
@csrf_exempt
@login_not_required
def events(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return responses.method_not_allowed("GET")
    return event_list(request)


@token_required()
def event_list(request: HttpRequest, token: ApiToken) -> HttpResponse:
    try:
        after_id = params.integer(
            request.GET.get("after_id"),
            "after_id",
            default=0,
            low=0,
            high=params.MAX_ID,
        )
        limit = params.integer(
            request.GET.get("limit"),
            "limit",
            default=params.DEFAULT_LIMIT,
            low=1,
            high=params.MAX_LIMIT,
        )
        chosen = params.filters(request.GET)
    except params.BadParameter as exc:
        return responses.bad_request(str(exc))
    page = cursor.page(chosen.apply(summary_rows()), after_id, limit)
    return JsonResponse(
        {
            "events": [event_summary(event) for event in page.events],
            "next_after_id": page.next_after_id,
            "has_more": page.has_more,
        }
    )


def summary_rows() -> QuerySet[Event]:
    return Event.objects.select_related("endpoint").only(*SUMMARY_FIELDS)


@csrf_exempt
@login_not_required
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    if request.method != "GET":
        return responses.method_not_allowed("GET")
    return detail(request, event_id)


@token_required()
def detail(request: HttpRequest, token: ApiToken, event_id: int) -> HttpResponse:
    event = Event.objects.select_related("endpoint").filter(pk=event_id).first()
    if event is None:
        return responses.not_found(f"no event {event_id}")
    return JsonResponse(full(event))


def full(event: Event) -> dict[str, Any]:
    """The summary plus the delivery as stored: headers, body (base64, and text when UTF-8), payload."""
    body = bytes(event.body)
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        **event_summary(event),
        "source_ip": event.source_ip,
        "headers": event.headers,
        "body_base64": base64.b64encode(body).decode("ascii"),
        "body_text": text,
        "payload": event.payload,
    }


@csrf_exempt
@login_not_required
def event_replay(request: HttpRequest, event_id: int) -> HttpResponse:
    if request.method != "POST":
        return responses.method_not_allowed("POST")
    return replay(request, event_id)


@token_required(replay=True)
def replay(request: HttpRequest, token: ApiToken, event_id: int) -> HttpResponse:
    report = replays.replay_many([event_id])
    if report.missing:
        return responses.not_found(f"no event {event_id}")
    if report.busy:
        return responses.error(
            409,
            "busy",
            detail="the event is being processed; replay it once it finishes",
        )
    event = Event.objects.select_related("endpoint").get(pk=event_id)
    return JsonResponse({"status": "queued", "event": event_summary(event)}, status=202)
