"""Postmark signs nothing; HTTP Basic credentials (oracle: none; RFC 7617)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.providers.contract import SLUG, ProviderContract
from tests.webhooks.providers.sending import send_every_sample
from webhooks.models import Endpoint, Event
from webhooks.providers.basic import BasicAuthProvider
from webhooks.providers.postmark import PostmarkProvider
from webhooks.sending import samples

# Postmark signs nothing: it sends the user:password written into the webhook URL
# as HTTP Basic credentials. No SDK verifier or vector exists for that.
SECRET = "postmark:7Yq2mVx9Lr4sKt8w"
OTHER_SECRET = "postmark:Jd3nB6pF1hZc5gQe"
#: One of the networks Postmark publishes for its webhooks, as a /32.
POSTMARK_NETWORK = "50.31.156.6/32"


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


class TestPostmark(ProviderContract):
    """No tamper or staleness test: Basic auth covers neither body nor time."""

    provider = "postmark"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return samples.render("postmark", "Delivery", now=time.time()).body

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return {"Authorization": basic(secret), "User-Agent": "Postmark"}

    def malformed(self, headers):
        return {**headers, "Authorization": "Basic !!not-base64!!"}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "Authorization"}

    def test_postmark_signs_nothing_so_an_altered_body_is_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        headers = self.sign(b"", SECRET)
        forged = json.dumps({"RecordType": "Bounce", "MessageID": "forged"}).encode()
        assert self.deliver(provider_client, forged, headers).status_code == 200

    def test_allowed_source_networks_can_be_required(
        self, provider_client: Client
    ) -> None:
        make_endpoint(SLUG, "postmark", SECRET, allowed_networks=[POSTMARK_NETWORK])
        body = self.sample()
        headers = self.sign(body, SECRET)
        refused = self.deliver(provider_client, body, headers)
        assert refused.status_code == 403
        assert refused.json() == {"error": "forbidden", "reason": "ip_not_allowed"}
        assert Event.objects.count() == 0
        allowed = provider_client.post(
            f"/webhooks/{SLUG}/",
            body,
            content_type="application/json",
            headers=headers,
            REMOTE_ADDR="50.31.156.6",
        )
        assert allowed.status_code == 200, allowed.content

    @pytest.mark.parametrize(
        ("event_type", "time_field"),
        [("Delivery", "DeliveredAt"), ("Bounce", "BouncedAt"), ("Open", "ReceivedAt")],
    )
    def test_record_type_is_the_type_and_record_message_and_time_the_dedup_key(
        self,
        provider_client: Client,
        endpoint: Endpoint,
        event_type: str,
        time_field: str,
    ) -> None:
        body = samples.render("postmark", event_type, now=time.time()).body
        self.deliver(provider_client, body, self.sign(body, SECRET))
        event = Event.objects.get()
        record = json.loads(body)
        assert event.event_type == event_type
        assert event.delivery_id == (
            f"{event_type}:{record['MessageID']}:{record[time_field]}"
        )

    def test_a_second_open_of_one_message_is_not_a_duplicate(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        first = json.loads(samples.render("postmark", "Open", now=time.time()).body)
        second = {**first, "ReceivedAt": "2030-01-01T00:00:00Z", "FirstOpen": False}
        for record in (first, second):
            body = json.dumps(record).encode()
            response = self.deliver(provider_client, body, self.sign(body, SECRET))
            assert response.json()["status"] == "received"
        assert Event.objects.count() == 2

    def test_inbound_message_without_record_type_is_typed_inbound(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = json.dumps(
            {
                "MessageID": "22c74902-a0c1-4511-804f2-341342852c90",
                "Date": "Fri, 1 Aug 2025 16:45:32 -04:00",
                "Subject": "Hi",
            }
        ).encode()
        self.deliver(provider_client, body, self.sign(body, SECRET))
        event = Event.objects.get()
        assert event.event_type == "Inbound"
        assert event.delivery_id.startswith("Inbound:22c74902")

    def test_credentials_are_stored_redacted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, SECRET))
        assert Event.objects.get().headers["authorization"] == "[redacted]"


def test_postmark_is_basic_auth_with_postmark_ids_and_types() -> None:
    assert issubclass(PostmarkProvider, BasicAuthProvider)
    assert PostmarkProvider.option_defaults == {}


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_with_the_credentials(live_server) -> None:
    for event in send_every_sample(live_server.url, "postmark", SECRET):
        assert event.headers["authorization"] == "[redacted]"
        assert json.loads(bytes(event.body))["MessageID"] in event.delivery_id
