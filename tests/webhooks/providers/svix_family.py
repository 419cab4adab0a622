"""The contract for the providers that deliver through Svix (svix, resend, clerk).

They are named aliases of ``standard``: the same scheme under ``svix-*`` header
names. Deliveries here are signed with the Svix library, as those senders sign.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import ClassVar

import svix.webhooks
from django.test import Client

from tests.webhooks.providers.contract import TimestampedContract
from webhooks.models import Endpoint, Event
from webhooks.providers.standard import secret_key
from webhooks.sending import samples

SECRET = "whsec_" + base64.b64encode(b"svix-family-secret-of-32-bytes!!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"svix-family-rotated-32-byte-key!").decode()


def svix_headers(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    try:
        text = body.decode()
    except UnicodeDecodeError:
        # The library signs text only; the same MAC over the raw bytes.
        key = secret_key(secret)
        assert key is not None
        signed = f"{msg_id}.{timestamp}.".encode() + body
        mac = hmac.new(key, signed, hashlib.sha256).digest()
        signature = "v1," + base64.b64encode(mac).decode()
    else:
        moment = datetime.fromtimestamp(timestamp, tz=UTC)
        signature = svix.webhooks.Webhook(secret).sign(msg_id, moment, text)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(timestamp),
        "svix-signature": signature,
    }


class SvixFamilyContract(TimestampedContract):
    secret = SECRET
    other_secret = OTHER_SECRET
    #: The sample the contract's deliveries are made from.
    sample_type: ClassVar[str]

    def sample(self) -> bytes:
        return samples.render(self.provider, self.sample_type, now=time.time()).body

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        timestamp = int(time.time()) if timestamp is None else timestamp
        return svix_headers(body, secret, timestamp)

    def malformed(self, headers):
        return {**headers, "svix-signature": "v1:" + "A" * 44}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "svix-signature"}

    def test_svix_id_is_the_dedup_key_and_body_type_the_event_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(SECRET)
        svix.webhooks.Webhook(SECRET).verify(body, headers)
        self.deliver(provider_client, body, headers)
        event = Event.objects.get()
        assert event.delivery_id == headers["svix-id"]
        assert event.event_type == self.sample_type

    def test_future_timestamp_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(SECRET, timestamp=int(time.time()) + 3600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )
