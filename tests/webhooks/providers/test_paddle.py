"""Paddle Billing. Paddle publishes no vector; its SDK checks what these tests
sign (oracle: paddle-python-sdk 1.16.1, Notifications.Verifier).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

import pytest
from django.test import Client
from paddle_billing.Notifications import Secret, Verifier

from tests.webhooks.providers.contract import TimestampedContract
from tests.webhooks.providers.sending import send_every_sample
from webhooks.models import Endpoint, Event
from webhooks.providers.paddle import PaddleProvider
from webhooks.sending import samples

SECRET = "pdl_ntfset_01gkpjp8bkm3tm53kdgkx6sms7_6h3qd3uFSi9YCD3OLYAShQI90XTI5vEI"
OTHER_SECRET = "pdl_ntfset_01hv0b5k2b3zb8d7v7n6j0a9qz_Qm1nFq4pZbX0sY7tR2uW9vE3kH5aJ8cL"


@dataclass
class SdkRequest:
    """What Paddle's Verifier reads from a request: headers and the raw body."""

    headers: dict[str, str]
    body: bytes


def paddle_header(body: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}:".encode() + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"ts={timestamp};h1={mac}"


def sdk_accepts(body: bytes, header: str, secret: str) -> bool:
    request = SdkRequest({"Paddle-Signature": header}, body)
    return bool(Verifier().verify(request, Secret(secret)))


class TestPaddle(TimestampedContract):
    provider = "paddle"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return samples.render("paddle", "transaction.completed", now=time.time()).body

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        timestamp = int(time.time()) if timestamp is None else timestamp
        return {"Paddle-Signature": paddle_header(body, secret, timestamp)}

    def malformed(self, headers):
        return {**headers, "Paddle-Signature": "h1=" + "0" * 64}

    def without_signature(self, headers):
        return {}

    # -- the SDK -----------------------------------------------------------------------

    def test_the_sdk_accepts_the_signatures_these_tests_make(self) -> None:
        # oracle: paddle-python-sdk 1.16.1 (Notifications.Verifier)
        body = self.sample()
        header = paddle_header(body, SECRET, int(time.time()))
        assert sdk_accepts(body, header, SECRET)
        assert not sdk_accepts(body, header, OTHER_SECRET)

    def test_the_sdk_accepts_what_sign_makes(self) -> None:
        # oracle: paddle-python-sdk 1.16.1 (Notifications.Verifier)
        body = self.sample()
        signed = PaddleProvider().sign(
            body,
            SECRET,
            url="https://hooks.example.com/webhooks/paddle/",
            delivery_id="",
            timestamp=int(time.time()),
            content_type="application/json",
        )
        assert sdk_accepts(body, signed.headers["Paddle-Signature"], SECRET)

    # -- provider-specific -------------------------------------------------------------

    def test_event_id_is_the_dedup_key_and_event_type_the_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, SECRET))
        event = Event.objects.get()
        assert event.delivery_id == json.loads(body)["event_id"]
        assert event.event_type == "transaction.completed"

    def test_same_event_to_another_destination_is_a_duplicate(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # Each destination gets its own notification_id; the event_id is the same.
        body = self.sample()
        first = self.deliver(provider_client, body, self.sign(body, SECRET))
        document = json.loads(body)
        document["notification_id"] = "ntf_01another"
        other = json.dumps(document).encode()
        second = self.deliver(provider_client, other, self.sign(other, SECRET))
        assert second.json() == {"status": "duplicate", "id": first.json()["id"]}

    def test_one_matching_h1_among_several_is_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # oracle: paddle-python-sdk 1.16.1 (Notifications.Verifier)
        body = self.sample()
        now = int(time.time())
        old = paddle_header(body, OTHER_SECRET, now).partition(";")[2]
        header = f"{paddle_header(body, SECRET, now)};{old}"
        assert sdk_accepts(body, header, SECRET)
        response = self.deliver(provider_client, body, {"Paddle-Signature": header})
        assert response.status_code == 200, response.content

    @pytest.mark.parametrize("skew", [-60, 60])
    def test_a_minute_either_way_is_refused_by_the_five_second_default(
        self, provider_client: Client, endpoint: Endpoint, skew: int
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET, timestamp=int(time.time()) + skew)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )

    def test_unknown_keys_are_skipped_never_matched(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        now = int(time.time())
        mac = paddle_header(body, SECRET, now).partition(";h1=")[2]
        only_unknown = {"Paddle-Signature": f"ts={now};h2={mac}"}
        self.assert_rejected(
            self.deliver(provider_client, body, only_unknown), "malformed_signature"
        )
        extra = {"Paddle-Signature": f"ts={now};h1={mac};h2=abc"}
        assert self.deliver(provider_client, body, extra).status_code == 200

    def test_two_timestamps_are_malformed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        header = self.sign(body, SECRET)["Paddle-Signature"]
        headers = {"Paddle-Signature": f"ts=1;{header}"}
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "malformed_signature"
        )


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_as_the_paddle_sdk_verifies(
    live_server,
) -> None:
    # oracle: paddle-python-sdk 1.16.1 (Notifications.Verifier)
    for event in send_every_sample(live_server.url, "paddle", SECRET):
        body = bytes(event.body)
        assert sdk_accepts(body, event.headers["paddle-signature"], SECRET)
        assert event.delivery_id == json.loads(body)["event_id"]
