"""What a newcomer sends first: each demo endpoint's obvious sample ends well."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from orders.management.commands.demo_setup import PROVIDERS
from orders.models import Order
from webhooks import testing
from webhooks.sending import samples


@pytest.fixture
def demo(monkeypatch) -> None:
    call_command("demo_setup", stdout=StringIO())
    # The demo's flaky handler draws its luck: here it always succeeds.
    monkeypatch.setattr("orders.webhook_handlers.random.random", lambda: 0.9)


@pytest.mark.django_db
@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_default_sample_of_each_demo_endpoint_ends_well(demo, provider) -> None:
    delivered = testing.deliver(f"demo-{provider}")
    assert delivered.status_code == 200, delivered.response.content
    if "id" not in delivered.answer:
        return  # a handshake (Slack's url_verification): answered, never processed
    testing.run_handlers()
    event = delivered.event
    event.refresh_from_db()
    assert event.status in ("succeeded", "skipped"), event.last_error


@pytest.mark.django_db
def test_webhooks_send_demo_stripe_pays_the_demo_order_its_sample_names(demo) -> None:
    assert samples.types("stripe")[0] == "payment_intent.succeeded"
    event = testing.deliver("demo-stripe").event
    testing.run_handlers()
    testing.assert_event(event, "succeeded")
    assert Order.objects.get(reference="DEMO-1001").status == Order.Status.PAID
