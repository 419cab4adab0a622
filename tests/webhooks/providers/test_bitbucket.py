"""Bitbucket Cloud (oracle: none published; our reading of the docs): Bitbucket
publishes no vector and ships no SDK.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
from django.test import Client

from tests.webhooks.providers.contract import SignedBodyContract
from tests.webhooks.providers.sending import send_every_sample
from webhooks.models import Endpoint, Event
from webhooks.sending import samples

# Bitbucket publishes no test vector and no Python verifier: signatures here follow
# its documented rule, X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>.
SECRET = "bb-7f3c9a1e5d2b4c6a8e0f1a2b3c4d5e6f"
OTHER_SECRET = "bb-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"


def bitbucket_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class TestBitbucket(SignedBodyContract):
    provider = "bitbucket"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return samples.render("bitbucket", "repo:push", now=0).body

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return {
            "X-Hub-Signature": bitbucket_signature(body, secret),
            "X-Event-Key": "repo:push",
            "X-Request-UUID": str(uuid.uuid4()),
            "X-Hook-UUID": "0f2a8d3e-7c61-4b59-a1d4-5e9b3c2f7a10",
            "X-Attempt-Number": "1",
        }

    def malformed(self, headers):
        return {**headers, "X-Hub-Signature": "sha256=not-hex"}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "X-Hub-Signature"}

    def test_request_uuid_is_the_dedup_key_and_event_key_the_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        self.deliver(provider_client, body, headers)
        event = Event.objects.get()
        assert event.delivery_id == headers["X-Request-UUID"]
        assert event.event_type == "repo:push"

    def test_a_resent_attempt_keeps_its_request_uuid_and_is_a_duplicate(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        first = self.deliver(provider_client, body, headers)
        again = self.deliver(
            provider_client, body, {**headers, "X-Attempt-Number": "2"}
        )
        assert again.json() == {"status": "duplicate", "id": first.json()["id"]}

    def test_data_center_request_id_is_the_dedup_key_there(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        del headers["X-Request-UUID"]
        headers["X-Request-Id"] = "dc-" + uuid.uuid4().hex
        self.deliver(provider_client, body, headers)
        assert Event.objects.get().delivery_id == headers["X-Request-Id"]

    def test_github_style_sha1_signature_is_malformed_here(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        sha1 = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
        headers = {**self.sign(body, SECRET), "X-Hub-Signature": f"sha1={sha1}"}
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "malformed_signature"
        )


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_signed_as_bitbucket_signs(
    live_server,
) -> None:
    for event in send_every_sample(live_server.url, "bitbucket", SECRET):
        body = bytes(event.body)
        assert event.headers["x-hub-signature"] == bitbucket_signature(body, SECRET)
        assert event.delivery_id == event.headers["x-request-uuid"]
        assert json.loads(body)["repository"]["full_name"] == "acme/storefront"
