"""Ingest for the event loop: the common delivery verified and stored without a thread of its own.

:func:`ingest_async` gives the same answers as :func:`webhooks.ingest.store.ingest`.
The common case runs in the event loop, which does only CPU work there: an
endpoint this process keeps in memory, a POST whose signature verifies, not a
handshake, a body small enough to parse without stalling the loop. Its event
goes to the group committer (:mod:`webhooks.ingest.committer`). Everything else (a
slug not seen lately, a refusal, which writes a Rejection, a handshake, a large
body) is handed to :func:`~webhooks.ingest.store.ingest` in a thread, which decides
exactly as it always does; those are rare, or throttled.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections

from webhooks.conf import conf
from webhooks.delivery import Answer, Delivery
from webhooks.ingest import answers, keys
from webhooks.ingest import endpoints as lookup
from webhooks.ingest.committer import Overloaded, committer
from webhooks.ingest.ratelimit import buckets
from webhooks.ingest.store import (
    new_event,
    rejections_key,
    signature_failure,
    verify_and_store,
)
from webhooks.models import Event

logger = logging.getLogger("webhooks")

#: Larger bodies are parsed in a thread: a few ms of JSON would hold up every request.
LOOP_BODY_BYTES = 256 * 1024


async def ingest_async(slug: str, delivery: Delivery) -> Answer:
    """Verify ``delivery`` for the endpoint ``slug``, store it, and say what to answer."""
    if not buckets.allow(f"source:{delivery.source_ip}", conf.RATE_LIMIT_PER_SOURCE):
        return answers.rate_limited()
    accepted = accept(slug, delivery)
    if accepted is None:
        return await sync_to_async(ingest_in_thread)(slug, delivery)
    if isinstance(accepted, Answer):
        return accepted
    try:
        event_id, created = await committer.store(accepted)
    except Overloaded:
        logger.warning("Delivery to %r refused: too many waiting for a commit", slug)
        return answers.unavailable()
    except DatabaseError:
        logger.warning(
            "Delivery to %r not stored: database unavailable", slug, exc_info=True
        )
        return answers.unavailable()
    return answers.stored(event_id, created)


def accept(slug: str, delivery: Delivery) -> Event | Answer | None:
    """The event to store, an answer that needs no database, or None: ask :func:`ingest`."""
    if delivery.method != "POST" or len(delivery.body) > LOOP_BODY_BYTES:
        return None
    endpoint = lookup.kept(slug)
    if endpoint is None or not endpoint.allows(delivery.source_ip):
        return None
    if buckets.exhausted(rejections_key(endpoint, delivery), conf.REJECTION_LIMIT):
        return answers.rate_limited()  # as refuse() answers a source that keeps failing
    try:
        provider = endpoint.get_provider(keys=keys.remote)
    except Exception:
        return None  # ingest() logs the misconfiguration and answers 503
    if signature_failure(endpoint, provider, delivery) is not None:
        return None  # re-checked against fresh secrets, then recorded, by ingest()
    # The checks in refuse()'s order: the endpoint's limit once the cheaper
    # refusals have passed, so each delivery takes one token whichever path it takes.
    if not buckets.allow(f"endpoint:{endpoint.pk}", conf.RATE_LIMIT_PER_ENDPOINT):
        return answers.rate_limited()
    payload = provider.parse(delivery)
    if provider.handshake(delivery, payload, endpoint.valid_secrets()) is not None:
        return None
    return new_event(
        endpoint,
        delivery,
        payload=payload,
        delivery_id=provider.delivery_id(delivery, payload),
        event_type=provider.event_type(delivery, payload),
        status=Event.Status.PENDING,
    )


def ingest_in_thread(slug: str, delivery: Delivery) -> Answer:
    # No request_started/finished signals on this path: the connection is
    # checked and released here, as Django does around a request.
    close_old_connections()
    try:
        return verify_and_store(slug, delivery)
    finally:
        close_old_connections()
