"""Standard Webhooks. The contract signs with the reference library (oracle:
standardwebhooks 1.1.0); the spec's published example is checked too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
import standardwebhooks.webhooks
import svix.webhooks
from django.test import Client

from tests.webhooks.payloads.loader import payload
from tests.webhooks.providers.contract import TimestampedContract
from webhooks.exceptions import InvalidSignature
from webhooks.models import Endpoint, Event
from webhooks.providers.delivery import Delivery
from webhooks.providers.standard import StandardWebhooksProvider, secret_key

# test_sign_function in every standard-webhooks library.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
VECTOR_BAD_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="

SECRET = VECTOR_SECRET
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-32-byte-secret-for-tests").decode()


def raw_signature(msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """``v1,`` base64 HMAC-SHA256 over raw bytes (the libraries only sign text)."""
    key = secret_key(secret)
    assert key is not None
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return (
        "v1,"
        + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    )


def vector_delivery(signature: str, body: bytes = VECTOR_BODY) -> Delivery:
    return Delivery(
        method="POST",
        headers={
            "content-type": "application/json",
            "webhook-id": VECTOR_ID,
            "webhook-timestamp": str(VECTOR_TIMESTAMP),
            "webhook-signature": signature,
        },
        body=body,
        source_ip="127.0.0.1",
        url="https://hooks.example.com/webhooks/standard/",
        received_at=VECTOR_TIMESTAMP,
    )


def verify_vector(signature: str, now: float = VECTOR_TIMESTAMP + 5) -> None:
    StandardWebhooksProvider().verify(
        vector_delivery(signature), [VECTOR_SECRET], tolerance=300, now=now
    )


class TestStandardWebhooks(TimestampedContract):
    provider = "standard"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        body = json.loads(payload("standard", "sample.json"))
        body["data"]["id"] = f"inv_{uuid.uuid4().hex[:16]}"
        return json.dumps(body).encode()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        timestamp = int(time.time()) if timestamp is None else timestamp
        msg_id = f"msg_{uuid.uuid4().hex}"
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            signature = raw_signature(msg_id, timestamp, body, secret)
        else:
            signature = standardwebhooks.webhooks.Webhook(secret).sign(
                msg_id, datetime.fromtimestamp(timestamp, tz=UTC), text
            )
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }

    def malformed(self, headers):
        return {
            **headers,
            "webhook-signature": "v1 " + headers["webhook-signature"].partition(",")[2],
        }

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "webhook-signature"}

    # -- official vector -------------------------------------------------------------

    def test_library_and_helper_reproduce_the_official_vector(self) -> None:
        # oracle: standardwebhooks SDK 1.1.0, svix SDK 2.9.1 and the published example in the Standard Webhooks libraries' tests
        moment = datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=UTC)
        text = VECTOR_BODY.decode()
        assert (
            standardwebhooks.webhooks.Webhook(VECTOR_SECRET).sign(
                VECTOR_ID, moment, text
            )
            == VECTOR_SIGNATURE
        )
        assert (
            svix.webhooks.Webhook(VECTOR_SECRET).sign(VECTOR_ID, moment, text)
            == VECTOR_SIGNATURE
        )
        assert (
            raw_signature(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, VECTOR_SECRET)
            == VECTOR_SIGNATURE
        )

    def test_official_vector_verifies_near_its_timestamp(self) -> None:
        # oracle: published example in the Standard Webhooks libraries' tests
        verify_vector(VECTOR_SIGNATURE)

    def test_official_negative_vector_is_a_mismatch(self) -> None:
        # oracle: published example in the Standard Webhooks libraries' tests
        with pytest.raises(InvalidSignature) as error:
            verify_vector(VECTOR_BAD_SIGNATURE)
        assert error.value.reason == "signature_mismatch"

    def test_official_vector_is_stale_today(self) -> None:
        # oracle: published example in the Standard Webhooks libraries' tests
        with pytest.raises(InvalidSignature) as error:
            verify_vector(VECTOR_SIGNATURE, now=time.time())
        assert error.value.reason == "timestamp_out_of_tolerance"

    def test_secret_without_prefix_or_padding_is_the_same_key(self) -> None:
        bare = VECTOR_SECRET.removeprefix("whsec_")
        assert secret_key(bare) == secret_key(VECTOR_SECRET)
        assert secret_key(VECTOR_SECRET) == base64.b64decode(bare)
        StandardWebhooksProvider().verify(
            vector_delivery(VECTOR_SIGNATURE),
            [bare],
            tolerance=300,
            now=VECTOR_TIMESTAMP,
        )

    # -- provider-specific -----------------------------------------------------------

    def test_svix_header_family_signed_by_the_svix_library_is_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        msg_id = f"msg_{uuid.uuid4().hex}"
        now = datetime.now(tz=UTC)
        headers = {
            "svix-id": msg_id,
            "svix-timestamp": str(int(now.timestamp())),
            "svix-signature": svix.webhooks.Webhook(SECRET).sign(
                msg_id, now, body.decode()
            ),
        }
        svix.webhooks.Webhook(SECRET).verify(body, headers)
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content
        event = Event.objects.get()
        assert event.delivery_id == msg_id
        assert event.event_type == "invoice.paid"

    def test_several_signatures_with_one_matching_are_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        rolled = raw_signature(
            headers["webhook-id"], int(headers["webhook-timestamp"]), body, OTHER_SECRET
        )
        headers["webhook-signature"] = f"{rolled} {headers['webhook-signature']}"
        standardwebhooks.webhooks.Webhook(SECRET).verify(body, headers)
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content

    def test_unknown_versions_are_skipped(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        ed25519 = "v1a," + base64.b64encode(b"\x01" * 64).decode()
        headers["webhook-signature"] = (
            f"{ed25519} {headers['webhook-signature']} v2,c29tZXRoaW5n"
        )
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content

    def test_matching_mac_under_an_unknown_version_is_not_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        headers["webhook-signature"] = headers["webhook-signature"].replace(
            "v1,", "v1a,", 1
        )
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "signature_mismatch"
        )

    def test_future_timestamp_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET, timestamp=int(time.time()) + 3600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )

    def test_webhook_id_is_the_dedup_key_across_re_signed_retries(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        first = self.deliver(provider_client, body, headers)
        assert Event.objects.get().delivery_id == headers["webhook-id"]
        # Each attempt is re-signed with a new timestamp but keeps the message id.
        retry_at = int(time.time()) + 5
        retry = {
            **headers,
            "webhook-timestamp": str(retry_at),
            "webhook-signature": raw_signature(
                headers["webhook-id"], retry_at, body, SECRET
            ),
        }
        second = self.deliver(provider_client, body, retry)
        assert second.json() == {"status": "duplicate", "id": first.json()["id"]}

    def test_signature_bound_to_the_message_id(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = {**self.sign(body, SECRET), "webhook-id": f"msg_{uuid.uuid4().hex}"}
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "signature_mismatch"
        )

    def test_missing_message_id_is_missing_signature(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        del headers["webhook-id"]
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "missing_signature"
        )

    def test_generated_secret_is_accepted_by_the_library(self) -> None:
        secret = StandardWebhooksProvider.generate_secret()
        assert secret.startswith("whsec_")
        key = secret_key(secret)
        assert key is not None and len(key) == 32
        moment = datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=UTC)
        signature = standardwebhooks.webhooks.Webhook(secret).sign(
            "msg_1", moment, "{}"
        )
        assert signature == raw_signature("msg_1", VECTOR_TIMESTAMP, b"{}", secret)
