from __future__ import annotations

import logging
import re
import time

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.db.transaction import non_atomic_requests
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from webhooks.conf import conf
from webhooks.delivery import Answer, Delivery
from webhooks.ingest import answers
from webhooks.ingest.origin import client_ip, public_url
from webhooks.ingest.store import ingest
from webhooks.observability import metrics

logger = logging.getLogger("webhooks")

#: An HTTP header name (RFC 9110 token). Servers refuse others, but an ASGI scope
#: can carry any bytes; such a name (a NUL in it fails PostgreSQL's jsonb) is dropped.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


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
    delivery = delivery_of(request, body, received_at)
    try:
        return await sync_to_async(ingest)(slug, delivery)
    except Exception:
        # Never a 500: the provider retries a 503, and the traceback is logged.
        logger.exception("Delivery to %r failed unexpectedly", slug)
        return answers.unavailable()


def delivery_of(request: HttpRequest, body: bytes, received_at: float) -> Delivery:
    """The delivery ``request`` brought, its body already read."""
    return Delivery(
        method=request.method or "",
        headers={
            name.lower(): value
            for name, value in request.headers.items()
            if HEADER_NAME.fullmatch(name)
        },
        body=body,
        source_ip=client_ip(request),
        url=public_url(request),
        received_at=received_at,
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
