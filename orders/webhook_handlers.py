"""What the demo shop does with webhooks; imported at start-up because of its name.

Handlers run at least once, so each one is idempotent: a second run of the
same event changes nothing. One that raises is retried with backoff and, if
it keeps failing, shows as failed with its error in the admin.
"""

from __future__ import annotations

import random
from typing import Any

from django.db import transaction
from django.utils import timezone

import webhooks
from orders.models import Order, Push
from webhooks.models import Event


class UnknownOrderError(LookupError):
    """A payment names no order of ours: retried, then failed, so someone looks."""


class PaymentMismatchError(ValueError):
    """A payment's amount or currency is not the order's: never marked paid silently."""


class DemoFlakyError(RuntimeError):
    """Raised on purpose by the demo, so that retries show on the live page."""


@webhooks.handler("stripe", "payment_intent.succeeded")
def mark_order_paid(event: Event) -> None:
    # https://docs.stripe.com/api/events/types#event_types-payment_intent.succeeded
    # "or {}" is for the type checker: handlers only run on events whose body parsed.
    payload: dict[str, Any] = event.payload or {}
    intent: dict[str, Any] = payload["data"]["object"]
    reference = (intent.get("metadata") or {}).get("order")
    if not reference:
        raise UnknownOrderError(
            f"PaymentIntent {intent.get('id')} has no metadata.order; "
            "create PaymentIntents with metadata={'order': reference}."
        )
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(reference=reference).first()
        if order is None:
            raise UnknownOrderError(
                f"PaymentIntent {intent.get('id')} names order {reference!r}, "
                "which does not exist."
            )
        if order.status == Order.Status.PAID:
            return  # Stripe may send an event twice, and replays run it again.
        received = intent.get("amount_received", intent.get("amount"))
        currency = str(intent.get("currency", "")).lower()
        if (received, currency) != (order.amount, order.currency.lower()):
            raise PaymentMismatchError(
                f"Order {reference!r} is {order.amount} {order.currency}, "
                f"PaymentIntent {intent.get('id')} received {received} {currency}."
            )
        order.status = Order.Status.PAID
        order.paid_at = timezone.now()
        order.stripe_payment_intent = intent.get("id")
        order.save(update_fields=["status", "paid_at", "stripe_payment_intent"])


@webhooks.handler("github", "push")
def record_push(event: Event) -> None:
    # https://docs.github.com/en/webhooks/webhook-events-and-payloads#push
    payload: dict[str, Any] = event.payload or {}
    Push.objects.get_or_create(
        delivery_id=event.delivery_id,
        defaults={
            "repository": payload["repository"]["full_name"],
            "ref": payload["ref"],
            # null when the push deleted the branch or tag
            "head_commit": (payload.get("head_commit") or {}).get("id", ""),
        },
    )


#: make run's demo endpoints (orders/management/commands/demo_setup.py).
DEMO_SLUG_PREFIX = "demo-"


@webhooks.handler("standard", "*")
def flaky_demo_handler(event: Event) -> None:
    # Only the demo's own endpoint: a real Standard Webhooks endpoint in this
    # project must never fail because of the demo.
    if not event.endpoint.slug.startswith(DEMO_SLUG_PREFIX):
        return
    if random.random() < 0.5:
        raise DemoFlakyError(
            f"Demo: this handler fails about half the time on {event.endpoint.slug} "
            "to show retries with backoff; a later attempt will likely succeed, "
            "and a failed event can be replayed from the live page."
        )
