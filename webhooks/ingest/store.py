"""The thread path: a delivery's steps with the database at hand, then its INSERT.

:func:`ingest` takes a :class:`~webhooks.providers.delivery.Delivery` and returns the
:class:`~webhooks.providers.delivery.Answer` of CONTRACT.md section 5: it walks the steps
of :mod:`webhooks.ingest.steps`, records a refusal, and stores what they let
through. It is a plain, synchronous function so that one thread hand-off
covers all its database work, whatever front door calls it; the event loop
hands it a delivery half-way through the steps with :func:`finish`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from webhooks.conf import conf
from webhooks.ingest import answers
from webhooks.ingest.breaker import breaker
from webhooks.ingest.ratelimit import buckets
from webhooks.ingest.redaction import redact
from webhooks.ingest.steps import Passage, Refused, rejections_key, walk
from webhooks.models import Endpoint, Event, Rejection
from webhooks.observability import metrics, tracing
from webhooks.processing import dispatch, handlers
from webhooks.providers import provider_classes
from webhooks.providers.delivery import Answer, Delivery
from webhooks.signals import delivery_rejected, event_received, send_after_commit

logger = logging.getLogger("webhooks")

REJECTED_BODY_KEPT = 4096


def ingest(slug: str, delivery: Delivery) -> Answer:
    """Verify ``delivery`` for the endpoint ``slug``, store it, and say what to answer."""
    return finish(Passage(slug, delivery, database=not breaker.open))


def finish(passage: Passage, start: int = 0) -> Answer:
    """The steps from ``start`` on, then the refusal's record or the store.

    With ``passage.database`` False (it is known to be down) nothing here asks
    the database: a refusal is answered unrecorded, and whatever needs it is 503.
    """
    try:
        return _finish(passage, start)
    except DatabaseError as error:
        breaker.saw(error)
        logger.warning(
            "Delivery to %r not stored: database unavailable",
            passage.slug,
            exc_info=True,
        )
        return answers.unavailable()


def _finish(passage: Passage, start: int) -> Answer:
    _, outcome = walk(passage, start)
    if isinstance(outcome, Answer):
        return outcome
    if isinstance(outcome, Refused):
        endpoint, _ = passage.found
        if passage.database:
            reject(endpoint, outcome.reason, passage.delivery)
        else:
            logger.info(
                "Delivery to %r rejected, not recorded (database down): %s",
                endpoint.slug,
                outcome.reason,
            )
        return outcome.answer
    if outcome is not None or not passage.database:
        return answers.unavailable()  # a step, or the store, needs the database
    event, handshake = verified_event(passage)
    event_id, created = store(event)
    if handshake is not None:
        return handshake
    return answers.stored(event_id, created)


def verified_event(passage: Passage) -> tuple[Event, Answer | None]:
    """The unsaved Event for a delivery every step let through, and its handshake answer if any."""
    endpoint, provider = passage.found
    delivery = passage.delivery
    payload = passage.payload()
    handshake = provider.handshake(delivery, payload, endpoint.valid_secrets())
    event = new_event(
        endpoint,
        delivery,
        payload=payload,
        delivery_id=provider.delivery_id(delivery, payload),
        event_type=provider.event_type(delivery, payload),
        status=Event.Status.SKIPPED if handshake else Event.Status.PENDING,
    )
    return event, handshake


def store(event: Event) -> tuple[int, bool]:
    """Insert ``event`` unless (endpoint, delivery id) exists; return its id and whether it is new."""
    event.ordering_key = ordering_key_of(event)
    with tracing.span("webhooks.store"):
        event_id, created = save_new(event)
    if created:
        transaction.on_commit(partial(announce_received, [event]))
        transaction.on_commit(partial(wake_if_pending, [event]))
    return event_id, created


def new_event(
    endpoint: Endpoint,
    delivery: Delivery,
    *,
    payload: Any,
    delivery_id: str | None,
    event_type: str,
    status: str,
) -> Event:
    """The unsaved Event for a verified delivery (its ordering key still unset)."""
    delivery_id = clean_text(delivery_id) or body_hash(delivery.body)
    if len(delivery_id) > 255:
        delivery_id = "sha256:" + hashlib.sha256(delivery_id.encode()).hexdigest()
    return Event(
        endpoint=endpoint,
        provider=endpoint.provider,
        delivery_id=delivery_id,
        event_type=clean_text(event_type)[:255],
        body=delivery.body,
        size=len(delivery.body),
        headers=stored_headers(endpoint, delivery),
        source_ip=delivery.source_ip,
        payload=payload,
        received_at=datetime.fromtimestamp(delivery.received_at, tz=UTC),
        status=status,
        next_attempt_at=timezone.now() if status == Event.Status.PENDING else None,
        trace_parent=tracing.current_parent(),
    )


def save_new(event: Event) -> tuple[int, bool]:
    """Insert ``event``; if its (endpoint, delivery id) is taken, the id of the row holding it.

    The unique constraint, not a prior SELECT, decides: of any number of
    concurrent copies exactly one insert wins and the others read its id.
    """
    try:
        insert(event)
    except IntegrityError:
        existing = (
            Event.objects.filter(
                endpoint_id=event.endpoint_id, delivery_id=event.delivery_id
            )
            .values_list("pk", flat=True)
            .first()
        )
        if existing is None:
            raise
        event.pk = None
        metrics.delivery_duplicate(event)
        return existing, False
    return event.pk, True


def announce_received(events: Sequence[Event]) -> None:
    """Send ``event_received`` for newly committed events."""
    for event in events:
        send_after_commit(event_received, sender=Event, event=event)


def wake_if_pending(events: Sequence[Event]) -> None:
    """Wake whatever processes events if any of these newly committed ones is due."""
    due = [event.pk for event in events if event.status == Event.Status.PENDING]
    if due:
        dispatch.new_work(due)


def ordering_key_of(event: Event) -> str:
    # User code (a handler's ordered_by) must never cost a delivery.
    try:
        return handlers.ordering_key(event)
    except Exception:
        logger.exception(
            "ordered_by of a handler failed for a %s event", event.provider
        )
        return ""


def insert(event: Event) -> None:
    """One INSERT, committed when it returns.

    In autocommit (how deliveries arrive: the view is non-atomic) the INSERT is
    its own transaction: one round trip instead of BEGIN, INSERT, COMMIT. Inside
    a caller's transaction a savepoint keeps a duplicate from breaking it.
    """
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            event.save(force_insert=True)
    else:
        event.save(force_insert=True)


def reject(endpoint: Endpoint, reason: str, delivery: Delivery) -> None:
    """Count and keep a refused delivery; failure to record it never changes the answer."""
    buckets.allow(rejections_key(endpoint, delivery), conf.REJECTION_LIMIT)
    logger.info(
        "Delivery to %r rejected: %s from %s", endpoint.slug, reason, delivery.source_ip
    )
    try:
        with transaction.atomic():
            Rejection.objects.create(
                endpoint=endpoint,
                reason=reason,
                headers=stored_headers(endpoint, delivery),
                body_head=delivery.body[:REJECTED_BODY_KEPT],
                body_size=len(delivery.body),
                source_ip=delivery.source_ip,
            )
            Endpoint.objects.filter(pk=endpoint.pk).update(
                rejected_count=F("rejected_count") + 1, last_rejected_at=timezone.now()
            )
            Rejection.trim(endpoint, conf.REJECTIONS_KEPT)
    except DatabaseError as error:
        breaker.saw(error)
        logger.warning("Rejection for %r not recorded", endpoint.slug, exc_info=True)
    transaction.on_commit(
        partial(
            send_after_commit,
            delivery_rejected,
            sender=Endpoint,
            endpoint=endpoint,
            reason=reason,
            source_ip=delivery.source_ip,
        )
    )


def stored_headers(endpoint: Endpoint, delivery: Delivery) -> dict[str, str]:
    """The delivery's headers as they may be kept: no credential, no secret of the endpoint."""
    cls = provider_classes().get(endpoint.provider)
    return redact(
        delivery.headers,
        secret_headers=cls.secret_headers if cls is not None else (),
        secrets=endpoint.valid_secrets(),
    )


def clean_text(value: str | None) -> str:
    # NUL cannot be stored in PostgreSQL text columns.
    return (value or "").replace("\x00", "")


def body_hash(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()
