"""Stripe. The contract signs with Stripe's own SDK where it can (oracle: stripe
SDK 16.1.0, WebhookSignature.generate_signature_header and verify_header); Stripe
publishes no vector.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import stripe
from django.test import Client

from tests.webhooks.payloads.loader import payload
from tests.webhooks.providers.contract import TimestampedContract
from webhooks.models import Endpoint, Event
from webhooks.providers.stripe import StripeProvider

SECRET = "whsec_3f9a1c0e5b7d4a2f8e6c1b0a9d8e7f6a5b4c3d2e1f0a9b8c"
OTHER_SECRET = "whsec_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a"
SAMPLE_ID = "evt_3PQxYz2eZvKYlo2C0a1b2c3d"


def raw_signature(body: bytes, secret: str, timestamp: int) -> str:
    """``v1`` hex HMAC-SHA256 of ``t.body`` over the raw bytes (the SDK only signs text)."""
    return hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()


def raw_header(body: bytes, secret: str, timestamp: int) -> str:
    return f"t={timestamp},v1={raw_signature(body, secret, timestamp)}"


class TestStripe(TimestampedContract):
    provider = "stripe"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        body = payload("stripe", "payment_intent.succeeded.json")
        return body.replace(SAMPLE_ID.encode(), f"evt_{uuid.uuid4().hex}".encode(), 1)

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        timestamp = int(time.time()) if timestamp is None else timestamp
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            header = raw_header(body, secret, timestamp)
        else:
            header = stripe.WebhookSignature.generate_signature_header(
                text, secret, timestamp=timestamp
            )
        return {
            "Stripe-Signature": header,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }

    def malformed(self, headers):
        return {**headers, "Stripe-Signature": "t=1718000000,v1=not-hex"}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "Stripe-Signature"}

    # -- provider-specific -----------------------------------------------------------

    def test_raw_bytes_helper_is_accepted_by_the_stripe_sdk(self) -> None:
        # oracle: stripe SDK 16.1.0 (WebhookSignature.verify_header)
        body = self.sample()
        header = raw_header(body, SECRET, int(time.time()))
        assert (
            stripe.WebhookSignature.verify_header(body, header, SECRET, tolerance=300)
            is True
        )

    def test_sdk_header_matches_the_raw_bytes_helper(self) -> None:
        # oracle: stripe SDK 16.1.0 (WebhookSignature.generate_signature_header)
        body = self.sample()
        timestamp = 1718000000
        sdk = stripe.WebhookSignature.generate_signature_header(
            body.decode(), SECRET, timestamp=timestamp
        )
        assert sdk == raw_header(body, SECRET, timestamp)

    def test_secret_is_used_verbatim_not_base64_decoded(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        timestamp = int(time.time())
        # Signing with the part after whsec_ (as Standard Webhooks would) must not pass.
        header = raw_header(body, SECRET.removeprefix("whsec_"), timestamp)
        response = self.deliver(provider_client, body, {"Stripe-Signature": header})
        self.assert_rejected(response, "signature_mismatch")

    def test_v0_only_signature_matching_the_body_is_malformed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        timestamp = int(time.time())
        header = f"t={timestamp},v0={raw_signature(body, SECRET, timestamp)}"
        response = self.deliver(provider_client, body, {"Stripe-Signature": header})
        self.assert_rejected(response, "malformed_signature")

    def test_v0_match_beside_a_wrong_v1_is_a_mismatch(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        timestamp = int(time.time())
        good = raw_signature(body, SECRET, timestamp)
        header = f"t={timestamp},v1={'0' * 64},v0={good}"
        response = self.deliver(provider_client, body, {"Stripe-Signature": header})
        self.assert_rejected(response, "signature_mismatch")

    def test_several_v1_entries_with_one_matching_are_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # oracle: stripe SDK 16.1.0 (WebhookSignature.verify_header)
        body = self.sample()
        timestamp = int(time.time())
        stale = raw_signature(body, OTHER_SECRET, timestamp)
        good = raw_signature(body, SECRET, timestamp)
        header = f"t={timestamp},v1={stale},v1={good},v0={'a' * 64}"
        assert stripe.WebhookSignature.verify_header(
            body, header, SECRET, tolerance=300
        )
        response = self.deliver(provider_client, body, {"Stripe-Signature": header})
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "received"

    def test_two_timestamps_are_malformed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        timestamp = int(time.time())
        header = raw_header(body, SECRET, timestamp) + f",t={timestamp + 1}"
        response = self.deliver(provider_client, body, {"Stripe-Signature": header})
        self.assert_rejected(response, "malformed_signature")

    def test_future_timestamp_is_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET, timestamp=int(time.time()) + 3600)
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content

    def test_timestamp_just_inside_the_tolerance_is_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET, timestamp=int(time.time()) - 240)
        assert self.deliver(provider_client, body, headers).status_code == 200

    def test_stale_signature_with_the_wrong_secret_is_a_mismatch(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # The signature is checked before the clock: a forger learns nothing from the reason.
        body = self.sample()
        headers = self.sign(body, OTHER_SECRET, timestamp=int(time.time()) - 3600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "signature_mismatch"
        )

    def test_body_id_is_the_dedup_key_and_body_type_the_event_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        response = self.deliver(provider_client, body, self.sign(body, SECRET))
        assert response.status_code == 200, response.content
        event = Event.objects.get()
        assert event.delivery_id == json.loads(body)["id"]
        assert event.event_type == "payment_intent.succeeded"
        assert (
            event.payload["data"]["object"]["description"] == "Order #1042 – café crème"
        )

    def test_redelivery_with_a_new_timestamp_is_a_duplicate(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        first = self.deliver(provider_client, body, self.sign(body, SECRET))
        later = self.sign(body, SECRET, timestamp=int(time.time()) + 60)
        second = self.deliver(provider_client, body, later)
        assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
        assert Event.objects.count() == 1


def test_generated_secret_looks_like_a_stripe_signing_secret() -> None:
    secret = StripeProvider.generate_secret()
    assert secret.startswith("whsec_")
    assert secret != StripeProvider.generate_secret()
