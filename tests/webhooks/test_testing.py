"""webhooks.testing, used as a project's own tests would use it: every built-in
provider signed for real, under pytest and under Django's TestCase."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import TestCase, override_settings

import webhooks
from tests.webhooks.providers.test_paypal import CERT_URL, CHAIN, ServedKeys
from webhooks import testing
from webhooks.ingest import keys
from webhooks.models import Event
from webhooks.processing.handlers import unregister
from webhooks.providers import provider_ids
from webhooks.providers.paypal import PayPalProvider, SendingKey
from webhooks.sending import samples

#: Every provider the package ships, each with every sample it ships.
SAMPLES = [
    (provider, event_type)
    for provider in provider_ids()
    for event_type in samples.types(provider)
]


@pytest.fixture
def paypal_signs(monkeypatch) -> Iterator[None]:
    """PayPal signs with its own key: stand in for it, as the PayPal tests do."""
    monkeypatch.setattr(PayPalProvider, "signer", SendingKey(CHAIN.leaf_key, CERT_URL))
    monkeypatch.setattr(keys, "remote", ServedKeys(CHAIN, [CHAIN.root]))
    yield


@pytest.fixture
def recorded() -> Iterator[list[Event]]:
    """A handler for any event of any provider, noting what it was given."""
    seen: list[Event] = []

    @webhooks.handler("*", "*")
    def note(event: Event) -> None:
        seen.append(event)

    yield seen
    unregister(note)


@pytest.mark.django_db
@pytest.mark.parametrize(("provider", "event_type"), SAMPLES)
def test_every_shipped_sample_of_every_provider_is_verified_and_stored(
    provider, event_type, paypal_signs
) -> None:
    endpoint = testing.make_endpoint(provider)
    delivered = testing.deliver(endpoint, event_type=event_type)
    assert 200 <= delivered.status_code < 300, delivered.response.content
    if "id" in delivered.answer:
        event = delivered.event
        assert event.endpoint == endpoint
        assert event.event_type == samples.read_as(provider, event_type)
        assert event.delivery_id != ""


SIGNED = [provider for provider in provider_ids() if provider != "none"]


@pytest.mark.django_db
@pytest.mark.parametrize("provider", SIGNED)
def test_a_delivery_signed_with_another_secret_is_refused(
    provider, paypal_signs
) -> None:
    endpoint = testing.make_endpoint(provider)
    other = testing.make_endpoint(provider, "other")
    delivered = testing.deliver(endpoint, secret=other.valid_secrets()[0])
    assert delivered.status_code == 401, delivered.response.content
    assert delivered.answer["error"] == "invalid_signature"
    assert Event.objects.count() == 0


@pytest.mark.django_db
def test_deliver_without_a_secret_that_signs_says_why() -> None:
    endpoint = testing.make_endpoint("paypal")
    with pytest.raises(NotImplementedError, match="only PayPal holds"):
        testing.deliver(endpoint)


@pytest.mark.django_db
def test_own_payload_with_any_event_type_runs_the_handler(recorded) -> None:
    endpoint = testing.make_endpoint("github")
    payload = {"action": "opened", "issue": {"number": 7}}
    delivered = testing.deliver(endpoint, event_type="issues", payload=payload)
    assert delivered.answer == {"status": "received", "id": delivered.event.pk}
    assert [event.pk for event in testing.run_handlers()] == [delivered.event.pk]
    assert recorded[0].payload == payload
    assert recorded[0].event_type == "issues"
    testing.assert_event(delivered.event, "succeeded", attempts=1)


@pytest.mark.django_db
def test_form_provider_payload_is_sent_as_a_form_and_signed_over_the_url(
    recorded,
) -> None:
    endpoint = testing.make_endpoint("twilio")
    delivered = testing.deliver(endpoint, payload={"MessageSid": "SM1", "Body": "hi"})
    assert delivered.status_code == 200, delivered.response.content
    testing.run_handlers()
    assert recorded[0].payload == {"MessageSid": "SM1", "Body": "hi"}


@pytest.mark.django_db
@override_settings(WEBHOOKS_PUBLIC_URL="https://hooks.example.com")
def test_url_signing_follows_the_public_url() -> None:
    endpoint = testing.make_endpoint("twilio")
    assert testing.deliver(endpoint).status_code == 200


@pytest.mark.django_db
def test_the_same_request_posted_again_is_a_duplicate() -> None:
    endpoint = testing.make_endpoint("stripe")
    first = testing.deliver(endpoint)
    again = testing.post(first.request)
    assert again.answer == {"status": "duplicate", "id": first.event.pk}


@pytest.mark.django_db
def test_a_failing_handler_retries_then_fails_with_its_error_shown() -> None:
    @webhooks.handler("stripe", "payment_intent.succeeded")
    def refuse(event: Event) -> None:
        raise LookupError("no such order")

    try:
        endpoint = testing.make_endpoint("stripe")
        event = testing.deliver(endpoint).event
        testing.run_handlers()
        testing.assert_event(event, "retrying", error="LookupError: no such order")
        with pytest.raises(AssertionError, match=r"(?s)is 'retrying'.*no such order"):
            testing.assert_event(event, "succeeded")
        testing.run_handlers(retries=True)
        testing.assert_event(event, "failed", attempts=8)
    finally:
        unregister(refuse)


@pytest.mark.django_db
def test_events_without_a_handler_are_skipped() -> None:
    event = testing.deliver(testing.make_endpoint("shopify")).event
    testing.run_handlers()
    testing.assert_event(event, "skipped")


@pytest.mark.django_db
def test_a_handshake_stores_no_event_to_assert_on() -> None:
    endpoint = testing.make_endpoint("slack")
    delivered = testing.deliver(endpoint, event_type="url_verification")
    assert "challenge" in delivered.answer
    with pytest.raises(AssertionError, match="stored no event"):
        delivered.event  # noqa: B018


@pytest.mark.django_db(transaction=True)
@override_settings(WEBHOOKS_PROCESSING="inline")
def test_committed_deliveries_wait_for_run_handlers_even_in_inline_mode(
    recorded,
) -> None:
    event = testing.deliver(testing.make_endpoint("github")).event
    testing.assert_event(event, "pending")
    testing.run_handlers()
    testing.assert_event(event, "succeeded")


class HelpersInDjangosTestCase(TestCase):
    """The same helpers in a TestCase: the event is processed inside its transaction."""

    def setUp(self) -> None:
        self.seen: list[str] = []

        @webhooks.handler("standard", "invoice.paid")
        def note(event: Event) -> None:
            self.seen.append(event.delivery_id)

        self.addCleanup(unregister, note)

    def test_a_signed_standard_webhook_reaches_the_handler(self) -> None:
        endpoint = testing.make_endpoint("standard", "billing")
        delivered = testing.deliver("billing")
        self.assertEqual(delivered.status_code, 200)
        testing.run_handlers()
        event = testing.assert_event(delivered.event, "succeeded")
        self.assertEqual(self.seen, [event.delivery_id])
        self.assertEqual(event.endpoint, endpoint)
