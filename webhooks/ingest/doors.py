"""What the two front doors share: a request read into a Delivery, and the never-a-500 guard.

The Django view (:mod:`webhooks.ingest.views`) and the lean ASGI door
(:mod:`webhooks.ingest.asgi`) differ only in how they receive the request and
send the answer; both build the :class:`~webhooks.providers.delivery.Delivery` here and
take their answer through :func:`answer_delivery`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from django.http import HttpRequest

from webhooks.ingest import answers
from webhooks.ingest.origin import client_ip, public_url
from webhooks.observability import tracing
from webhooks.providers.delivery import Answer, Delivery

logger = logging.getLogger("webhooks")

#: An HTTP header name (RFC 9110 token). Servers refuse others, but an ASGI scope
#: can carry any bytes; such a name (a NUL in it fails PostgreSQL's jsonb) is dropped.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

#: Either door's way to verify and store: the thread path, or the event loop's.
Ingest = Callable[[str, Delivery], Awaitable[Answer]]

#: The names of the URL patterns that take deliveries (``webhooks/urls.py``).
DELIVERY_URL_NAMES = frozenset({"receive", "receive_without_slash"})


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


async def answer_delivery(
    request: HttpRequest, slug: str, body: bytes, received_at: float, ingest: Ingest
) -> Answer:
    """What ``ingest`` answers the delivery in ``request``, or 503 if anything raises: never a 500.

    The provider retries a 503, and the traceback is logged.
    """
    return await guarded_answer(slug, delivery_of(request, body, received_at), ingest)


async def guarded_answer(slug: str, delivery: Delivery, ingest: Ingest) -> Answer:
    """What ``ingest`` answers ``delivery``, or 503 if anything raises (see :func:`answer_delivery`)."""
    with tracing.span("webhooks.ingest", kind="server", endpoint=slug) as current:
        try:
            answer = await ingest(slug, delivery)
        except Exception:
            logger.exception("Delivery to %r failed unexpectedly", slug)
            answer = answers.unavailable()
        tracing.annotate(current, **{"http.response.status_code": answer.status})
        return answer
