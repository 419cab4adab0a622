"""Verify and store one delivery: the whole request path, free of HTTP classes.

:func:`ingest` takes a :class:`~webhooks.delivery.Delivery` and returns the
:class:`~webhooks.delivery.Answer` of CONTRACT.md section 5. It is a plain,
synchronous function so that one thread hand-off covers all its database work,
whatever front door calls it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from webhooks.conf import conf
from webhooks.delivery import Answer, Delivery
from webhooks.exceptions import (
    InvalidSignature,
    ProviderConfigError,
    UnknownProviderError,
    VerifyTokenMismatch,
)
from webhooks.ingest import answers, keys
from webhooks.ingest import endpoints as lookup
from webhooks.ingest.ratelimit import buckets
from webhooks.ingest.redaction import redact
from webhooks.models import Endpoint, Event, Rejection
from webhooks.observability import metrics
from webhooks.processing import dispatch, handlers
from webhooks.providers import provider_classes
from webhooks.providers.base import Provider
from webhooks.signals import delivery_rejected, event_received, send_after_commit

logger = logging.getLogger("webhooks")

REJECTED_BODY_KEPT = 4096


def ingest(slug: str, delivery: Delivery) -> Answer:
    """Verify ``delivery`` for the endpoint ``slug``, store it, and say what to answer."""
    if not buckets.allow(f"source:{delivery.source_ip}", conf.RATE_LIMIT_PER_SOURCE):
        return answers.rate_limited()
    return verify_and_store(slug, delivery)


def verify_and_store(slug: str, delivery: Delivery) -> Answer:
    """:func:`ingest` after the per-source limit."""
    try:
        return _ingest(slug, delivery)
    except DatabaseError:
        logger.warning(
            "Delivery to %r not stored: database unavailable", slug, exc_info=True
        )
        return answers.unavailable()


def _ingest(slug: str, delivery: Delivery) -> Answer:
    endpoint, kept = lookup.find(slug)
    if endpoint is None:
        return answers.unknown_endpoint()
    try:
        provider = endpoint.get_provider(keys=keys.remote)
    except (UnknownProviderError, ProviderConfigError):
        # A misconfigured endpoint cannot verify anything; the provider should retry
        # once an operator fixes it (system check webhooks.E002 names it).
        logger.error("Endpoint %r is misconfigured", slug, exc_info=True)
        return answers.unavailable()
    refusal = refuse(endpoint, provider, delivery, kept=kept)
    if refusal is not None:
        return refusal
    payload = provider.parse(delivery)
    # A delivery refused by kept secrets was verified with fresh ones, now kept.
    current = (lookup.kept(slug) if kept else None) or endpoint
    handshake = provider.handshake(delivery, payload, current.valid_secrets())
    event_id, created = store(
        endpoint,
        delivery,
        payload=payload,
        delivery_id=provider.delivery_id(delivery, payload),
        event_type=provider.event_type(delivery, payload),
        status=Event.Status.SKIPPED if handshake else Event.Status.PENDING,
    )
    if handshake is not None:
        return handshake
    return answers.stored(event_id, created)


def refuse(
    endpoint: Endpoint, provider: Provider, delivery: Delivery, *, kept: bool = False
) -> Answer | None:
    """The answer refusing the delivery, or None when it may be stored.

    ``kept``: the endpoint came from the process's cache, so a signature that
    fails is checked once more against the secrets in the database.
    """
    if delivery.method != "POST" and delivery.method not in provider.extra_methods:
        return answers.method_not_allowed(provider.extra_methods)
    if buckets.exhausted(rejections_key(endpoint, delivery), conf.REJECTION_LIMIT):
        # A source that keeps failing costs no more verification or writes.
        return answers.rate_limited()
    if not endpoint.allows(delivery.source_ip):
        reject(endpoint, "ip_not_allowed", delivery)
        return answers.forbidden()
    if not buckets.allow(f"endpoint:{endpoint.pk}", conf.RATE_LIMIT_PER_ENDPOINT):
        return answers.rate_limited()
    failure = signature_failure(endpoint, provider, delivery)
    if failure is not None and kept:
        fresh, _ = lookup.find(endpoint.slug, fresh=True)
        if fresh is not None:
            failure = signature_failure(fresh, provider, delivery)
    if isinstance(failure, VerifyTokenMismatch):
        reject(endpoint, "verify_token_mismatch", delivery)
        return answers.forbidden("verify_token_mismatch")
    if failure is not None:
        reject(endpoint, failure.reason, delivery)
        return answers.invalid_signature(failure.reason)
    return None


def signature_failure(
    endpoint: Endpoint, provider: Provider, delivery: Delivery
) -> InvalidSignature | None:
    try:
        provider.verify(
            delivery,
            endpoint.valid_secrets(),
            tolerance=endpoint.tolerance(provider),
            now=time.time(),
        )
    except InvalidSignature as error:
        return error
    return None


def store(
    endpoint: Endpoint,
    delivery: Delivery,
    *,
    payload: Any,
    delivery_id: str | None,
    event_type: str,
    status: str,
) -> tuple[int, bool]:
    """Insert the event unless (endpoint, delivery id) exists; return its id and whether it is new."""
    event = new_event(
        endpoint,
        delivery,
        payload=payload,
        delivery_id=delivery_id,
        event_type=event_type,
        status=status,
    )
    event.ordering_key = ordering_key_of(event)
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
    if any(event.status == Event.Status.PENDING for event in events):
        dispatch.new_work()


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


def rejections_key(endpoint: Endpoint, delivery: Delivery) -> str:
    return f"rejected:{endpoint.pk}:{delivery.source_ip}"


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
    except DatabaseError:
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
