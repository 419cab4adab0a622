"""The Django front door: a view that reads the request and answers what ingest decides."""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.db.transaction import non_atomic_requests
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from webhooks.conf import conf
from webhooks.ingest import answers
from webhooks.ingest.doors import answer_delivery
from webhooks.ingest.store import ingest
from webhooks.observability import metrics
from webhooks.providers.delivery import Answer


# The view only reads the request and answers; everything else is ingest(), one
# synchronous call and so one thread hand-off. It is non-atomic so that a site
# with ATOMIC_REQUESTS still commits the event before the 2xx, and csrf-exempt
# because providers post without a token (the signature authenticates them).
@csrf_exempt
@login_not_required
@non_atomic_requests
async def receive(request: HttpRequest, slug: str) -> HttpResponse:
    received_at = time.time()
    answer = await answer_for(request, slug, received_at)
    metrics.answered(answer.status, time.time() - received_at)
    return to_response(answer)


async def answer_for(request: HttpRequest, slug: str, received_at: float) -> Answer:
    if request.method not in ("POST", "GET"):
        return answers.method_not_allowed()
    limit = conf.MAX_BODY_BYTES
    if declared_length(request) > limit:
        return answers.body_too_large()
    body = request.read(limit + 1)
    if len(body) > limit:
        return answers.body_too_large()
    return await answer_delivery(
        request, slug, body, received_at, sync_to_async(ingest)
    )


@csrf_exempt
@login_not_required
def not_an_endpoint(request: HttpRequest) -> HttpResponse:
    return to_response(answers.unknown_endpoint())


def declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def to_response(answer: Answer) -> HttpResponse:
    response = HttpResponse(
        answer.body, status=answer.status, content_type=answer.content_type
    )
    for name, value in answer.headers.items():
        response[name] = value
    return response
