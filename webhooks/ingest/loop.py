"""Ingest for the event loop: the common delivery verified and stored without a thread of its own.

:func:`ingest_async` gives the same answers as :func:`webhooks.ingest.store.ingest`:
it walks the same steps (:mod:`webhooks.ingest.steps`) in the event loop, which
does only CPU work there, and hands the event of a delivery they let through to
the group committer (:mod:`webhooks.ingest.committer`). When a step needs the
database (a slug this process does not keep, a signature to check against
fresh secrets, a refusal to record), the delivery is handed to
:func:`~webhooks.ingest.store.finish` in a thread, which goes on from that
step; those are rare, or throttled. So is a large body, verified and parsed
in the thread from the first step.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from webhooks.ingest import answers
from webhooks.ingest.breaker import breaker
from webhooks.ingest.committer import Overloaded, committer
from webhooks.ingest.inserts import NewEvent, payload_text
from webhooks.ingest.steps import Passage, walk
from webhooks.ingest.store import (
    body_hash,
    clean_text,
    finish,
    ordering_key_of,
    stored_headers,
)
from webhooks.models import Event
from webhooks.observability import tracing
from webhooks.processing.handlers import handlers_for
from webhooks.providers.base import Provider
from webhooks.providers.delivery import Answer, Delivery
from webhooks.providers.payloads import FORM_TYPES

logger = logging.getLogger("webhooks")

#: Larger bodies are verified and parsed in a thread: a few ms of HMAC or JSON
#: would hold up every request.
LOOP_BODY_BYTES = 256 * 1024


async def ingest_async(slug: str, delivery: Delivery) -> Answer:
    """Verify ``delivery`` for the endpoint ``slug``, store it, and say what to answer."""
    passage = Passage(slug, delivery, database=False)
    if len(delivery.body) > LOOP_BODY_BYTES:
        return await in_thread(passage, 0)
    index, outcome = walk(passage)
    if isinstance(outcome, Answer):
        return outcome
    if outcome is not None:  # the database is needed: to decide, or to record a refusal
        if breaker.open:
            # It is known to be down: finish() asks it nothing, so no thread is needed.
            return finish(passage, index)
        return await in_thread(passage, index)
    if breaker.open:
        return answers.unavailable()
    row, handshake = verified_row(passage)
    try:
        with tracing.span("webhooks.store", batched=True):
            event_id, created = await committer.store(row)
    except Overloaded:
        logger.warning("Delivery to %r refused: too many waiting for a commit", slug)
        return answers.unavailable()
    except DatabaseError:
        logger.warning(
            "Delivery to %r not stored: database unavailable", slug, exc_info=True
        )
        return answers.unavailable()
    if handshake is not None:
        return handshake
    return answers.stored(event_id, created)


def verified_row(passage: Passage) -> tuple[NewEvent, Answer | None]:
    """:func:`~webhooks.ingest.store.verified_event` as column values: the same row, no model instance."""
    endpoint, provider = passage.found
    delivery = passage.delivery
    payload = passage.payload()
    handshake = provider.handshake(delivery, payload, endpoint.valid_secrets())
    status = Event.Status.SKIPPED if handshake else Event.Status.PENDING
    delivery_id = clean_text(provider.delivery_id(delivery, payload))
    delivery_id = delivery_id or body_hash(delivery.body)
    if len(delivery_id) > 255:
        delivery_id = "sha256:" + hashlib.sha256(delivery_id.encode()).hexdigest()
    values = {
        "endpoint_id": endpoint.pk,
        "provider": endpoint.provider,
        "delivery_id": delivery_id,
        "event_type": clean_text(provider.event_type(delivery, payload))[:255],
        "body": delivery.body,
        "size": len(delivery.body),
        "headers": stored_headers(endpoint, delivery),
        "source_ip": delivery.source_ip,
        "payload": payload,
        "received_at": datetime.fromtimestamp(delivery.received_at, tz=UTC),
        "status": status,
        "next_attempt_at": timezone.now() if status == Event.Status.PENDING else None,
        "ordering_key": "",
        "trace_parent": tracing.current_parent(),
    }
    row = NewEvent(values, endpoint)
    if any(
        entry.ordered_by is not None
        for entry in handlers_for(endpoint.provider, values["event_type"])
    ):
        values["ordering_key"] = ordering_key_of(row.event())
    parsed_from_body = (
        type(provider).parse is Provider.parse
        and delivery.content_type not in FORM_TYPES
    )
    row.payload_json = payload_text(delivery.body, payload, parsed_from_body)
    return row, handshake


async def in_thread(passage: Passage, start: int) -> Answer:
    # A thread of the pool, not Django's one thread-sensitive thread: these
    # deliveries are independent, and one slow one must not hold up the others.
    return await sync_to_async(finish_in_thread, thread_sensitive=False)(passage, start)


def finish_in_thread(passage: Passage, start: int) -> Answer:
    # No request_started/finished signals on this path: the connection is
    # checked and released here, as Django does around a request.
    passage.database = not breaker.open
    close_old_connections()
    try:
        return finish(passage, start)
    finally:
        close_old_connections()
