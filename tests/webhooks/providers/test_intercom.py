"""Intercom (oracle: none published; our reading of the docs): Intercom
publishes no vector and its Python SDK has no verifier.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.test import Client

from tests.webhooks.providers.contract import SignedBodyContract
from tests.webhooks.providers.sending import send_every_sample
from webhooks.models import Endpoint, Event
from webhooks.sending import samples

# Intercom publishes no test vector and its Python SDK has no verifier: signatures
# here follow the documented rule, X-Hub-Signature: sha1=<hex HMAC-SHA1 of the body>.
SECRET = "ic-client-secret-4b1e9d2c7a5f3e80"
OTHER_SECRET = "ic-client-secret-0d9c8b7a6f5e4d3c"


def intercom_signature(body: bytes, secret: str) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


class TestIntercom(SignedBodyContract):
    provider = "intercom"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return samples.render(
            "intercom", "conversation.user.created", now=1718000000
        ).body

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return {"X-Hub-Signature": intercom_signature(body, secret)}

    def malformed(self, headers):
        return {**headers, "X-Hub-Signature": "sha1=zz"}

    def without_signature(self, headers):
        return {}

    def test_notification_id_is_the_dedup_key_and_topic_the_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, SECRET))
        event = Event.objects.get()
        assert event.delivery_id == json.loads(body)["id"]
        assert event.delivery_id.startswith("notif_")
        assert event.event_type == "conversation.user.created"

    def test_sha256_signature_is_malformed_for_intercom(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # Same header name as Bitbucket's, but Intercom signs with SHA-1.
        body = self.sample()
        sha256 = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature": f"sha256={sha256}"}
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "malformed_signature"
        )

    def test_ping_is_stored_as_an_ordinary_signed_event(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = samples.render("intercom", "ping", now=1718000000).body
        response = self.deliver(provider_client, body, self.sign(body, SECRET))
        assert response.status_code == 200, response.content
        assert Event.objects.get().event_type == "ping"


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_signed_as_intercom_signs(
    live_server,
) -> None:
    for event in send_every_sample(live_server.url, "intercom", SECRET):
        body = bytes(event.body)
        assert event.headers["x-hub-signature"] == intercom_signature(body, SECRET)
        assert event.delivery_id == json.loads(body)["id"]
