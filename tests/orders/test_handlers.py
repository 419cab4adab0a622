"""The worked example's handlers: called directly, through the registry, and by a worker."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from django.utils import timezone

from orders.models import Order, Push
from orders.webhook_handlers import (
    PaymentMismatchError,
    UnknownOrderError,
    mark_order_paid,
    record_push,
)
from tests.factories import make_endpoint, make_event
from webhooks.models import Event
from webhooks.processing import batches, claims
from webhooks.processing.handlers import handlers_for

pytestmark = pytest.mark.django_db

PAYLOADS = Path(__file__).resolve().parent.parent / "webhooks" / "payloads"


def captured(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def payment_event(reference: str | None = "A-1042", **intent_fields) -> Event:
    payload = copy.deepcopy(captured("stripe/payment_intent.succeeded.json"))
    intent = payload["data"]["object"]
    intent["metadata"] = {} if reference is None else {"order": reference}
    intent.update(intent_fields)
    endpoint = make_endpoint("stripe", "stripe", "whsec_test")
    return make_event(
        endpoint,
        payload["id"],
        event_type="payment_intent.succeeded",
        payload=payload,
        body=json.dumps(payload).encode(),
    )


def push_event(delivery_id: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958", **changes):
    payload = {**captured("github/push.json"), **changes}
    endpoint = make_endpoint("gh", "github", "s3cret")
    return make_event(endpoint, delivery_id, event_type="push", payload=payload)


def make_order(**fields) -> Order:
    values = {"reference": "A-1042", "amount": 2000, "currency": "eur", **fields}
    return Order.objects.create(**values)


# Stripe: payment_intent.succeeded


def test_mark_order_paid_marks_the_referenced_order_paid() -> None:
    order = make_order()
    make_order(reference="A-7")

    mark_order_paid(payment_event())

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert order.paid_at is not None
    assert order.stripe_payment_intent == "pi_3PQxYz2eZvKYlo2C0wXyZ123"
    assert Order.objects.get(reference="A-7").status == Order.Status.PENDING


def test_mark_order_paid_twice_changes_nothing_the_second_time() -> None:
    order = make_order()
    event = payment_event()
    mark_order_paid(event)
    order.refresh_from_db()
    first_paid_at = order.paid_at

    mark_order_paid(event)

    order.refresh_from_db()
    assert (order.status, order.paid_at) == (Order.Status.PAID, first_paid_at)


def test_mark_order_paid_on_an_order_paid_earlier_leaves_it_alone() -> None:
    paid_at = timezone.now()
    order = make_order(status=Order.Status.PAID, paid_at=paid_at)

    mark_order_paid(payment_event())

    order.refresh_from_db()
    assert (order.paid_at, order.stripe_payment_intent) == (paid_at, None)


def test_mark_order_paid_for_an_unknown_order_raises_a_clear_error() -> None:
    with pytest.raises(
        UnknownOrderError, match="names order 'A-404', which does not exist"
    ):
        mark_order_paid(payment_event("A-404"))


def test_mark_order_paid_without_an_order_reference_raises_a_clear_error() -> None:
    make_order()

    with pytest.raises(UnknownOrderError, match="has no metadata.order"):
        mark_order_paid(payment_event(None))


@pytest.mark.parametrize("intent", [{"amount_received": 1999}, {"currency": "usd"}])
def test_mark_order_paid_with_another_amount_or_currency_raises_and_leaves_it_pending(
    intent,
) -> None:
    order = make_order()

    with pytest.raises(PaymentMismatchError, match="A-1042"):
        mark_order_paid(payment_event(**intent))

    order.refresh_from_db()
    assert order.status == Order.Status.PENDING


def test_mark_order_paid_is_registered_for_stripe_payment_intent_succeeded() -> None:
    functions = [
        entry.function for entry in handlers_for("stripe", "payment_intent.succeeded")
    ]

    assert mark_order_paid in functions
    assert record_push not in functions


# GitHub: push


def test_record_push_stores_repository_ref_and_head_commit() -> None:
    record_push(push_event())

    push = Push.objects.get()
    assert push.delivery_id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert push.repository == "baxterthehacker/public-repo"
    assert push.ref == "refs/heads/main"
    assert push.head_commit == "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"


def test_record_push_twice_keeps_one_row() -> None:
    event = push_event()

    record_push(event)
    record_push(event)

    assert Push.objects.count() == 1


def test_record_push_of_a_deleted_branch_has_no_head_commit() -> None:
    record_push(push_event(deleted=True, head_commit=None))

    assert Push.objects.get().head_commit == ""


def test_record_push_is_registered_for_github_push() -> None:
    functions = [entry.function for entry in handlers_for("github", "push")]

    assert record_push in functions
    assert mark_order_paid not in functions


# Through the processing engine, as a worker runs them


def process(event: Event) -> str | None:
    Event.objects.filter(pk=event.pk).update(
        status=Event.Status.PENDING, next_attempt_at=timezone.now()
    )
    assert claims.claim(10, "test-worker") == [event.pk]
    return batches.run(event.pk, "test-worker")


def test_a_paid_event_processed_by_a_worker_marks_the_order_paid() -> None:
    order = make_order()

    assert process(payment_event()) == Event.Status.SUCCEEDED

    order.refresh_from_db()
    assert order.status == Order.Status.PAID


def test_a_payment_for_an_unknown_order_retries_with_the_error_shown() -> None:
    event = payment_event("A-404")

    assert process(event) == Event.Status.RETRYING

    event.refresh_from_db()
    assert "UnknownOrderError" in event.last_error
    assert "A-404" in event.last_error
