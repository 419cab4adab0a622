"""SendGrid. The published example of sendgrid-python's tests and the SDK
itself (oracle: sendgrid SDK 6.12.5, EventWebhook.verify_signature).
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from sendgrid import EventWebhook

from tests.factories import make_endpoint
from tests.webhooks.providers.contract import SignedBodyContract
from tests.webhooks.providers.live_send import send_and_check
from webhooks.exceptions import InvalidSignature, ProviderConfigError
from webhooks.models import Endpoint, Event
from webhooks.providers.delivery import Delivery
from webhooks.providers.sendgrid import SendGridProvider, load_key

# The vector of sendgrid-python's EventWebhook tests: SendGrid's own key and
# signature over one "dropped" event, serialised with sorted keys, compact, and
# followed by CRLF (the CRLF is part of what SendGrid signed).
VECTOR_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpV"
    "KS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
VECTOR_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqH"
    "h89M15TluLtEZtM="
)
VECTOR_TIMESTAMP = "1600112502"
VECTOR_EVENT = {
    "email": "hello@world.com",
    "event": "dropped",
    "reason": "Bounced Address",
    "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
    "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
    "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
    "timestamp": 1600112492,
}
VECTOR_BODY = (
    json.dumps([VECTOR_EVENT], sort_keys=True, separators=(",", ":")) + "\r\n"
).encode()


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def shown_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The public key as SendGrid's Mail Settings show it: base64 DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


KEY, OTHER_KEY = new_key(), new_key()
PRIVATE = {shown_key(KEY): KEY, shown_key(OTHER_KEY): OTHER_KEY}


def vector_delivery(body: bytes = VECTOR_BODY) -> Delivery:
    return Delivery(
        method="POST",
        headers={
            "content-type": "application/json",
            "x-twilio-email-event-webhook-signature": VECTOR_SIGNATURE,
            "x-twilio-email-event-webhook-timestamp": VECTOR_TIMESTAMP,
        },
        body=body,
        source_ip="127.0.0.1",
        url="https://hooks.example.com/webhooks/sendgrid/",
        received_at=time.time(),
    )


class TestSendGrid(SignedBodyContract):
    provider = "sendgrid"
    secret = shown_key(KEY)
    other_secret = shown_key(OTHER_KEY)

    def sample(self) -> bytes:
        events = [
            {
                "email": "ada@example.com",
                "event": "delivered",
                "sg_event_id": uuid.uuid4().hex,
                "sg_message_id": f"{uuid.uuid4().hex}.recvd-1",
                "timestamp": int(time.time()),
            },
            {
                "email": "grace@example.com",
                "event": "delivered",
                "sg_event_id": uuid.uuid4().hex,
                "sg_message_id": f"{uuid.uuid4().hex}.recvd-2",
                "timestamp": int(time.time()),
            },
        ]
        return json.dumps(events).encode() + b"\r\n"

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        timestamp = int(time.time()) if timestamp is None else timestamp
        signature = PRIVATE[secret].sign(
            str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256())
        )
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(
                signature
            ).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
            "User-Agent": "SendGrid Event API",
        }

    def malformed(self, headers):
        return {**headers, "X-Twilio-Email-Event-Webhook-Signature": "not base64!"}

    def without_signature(self, headers):
        return {
            k: v
            for k, v in headers.items()
            if k != "X-Twilio-Email-Event-Webhook-Signature"
        }

    # -- official vector and SDK -----------------------------------------------------

    def test_sdk_accepts_the_official_vector_as_rebuilt_here(self) -> None:
        # oracle: sendgrid SDK 6.12.5 and the published example in sendgrid-python's tests
        webhook = EventWebhook(VECTOR_KEY)
        assert webhook.verify_signature(
            VECTOR_BODY.decode(), VECTOR_SIGNATURE, VECTOR_TIMESTAMP
        )

    def test_official_vector_verifies(self) -> None:
        # oracle: published example in sendgrid-python's tests (test_eventwebhook.py)
        SendGridProvider().verify(
            vector_delivery(), [VECTOR_KEY], tolerance=None, now=time.time()
        )

    def test_official_vector_without_its_trailing_crlf_is_a_mismatch(self) -> None:
        # oracle: published example in sendgrid-python's tests (test_eventwebhook.py)
        with pytest.raises(InvalidSignature) as error:
            SendGridProvider().verify(
                vector_delivery(VECTOR_BODY.rstrip()),
                [VECTOR_KEY],
                tolerance=None,
                now=time.time(),
            )
        assert error.value.reason == "signature_mismatch"

    def test_sdk_verifies_what_sign_produces(self) -> None:
        # oracle: sendgrid SDK 6.12.5 (EventWebhook.verify_signature)
        body = self.sample()
        headers = self.sign(body, self.secret)
        assert EventWebhook(self.secret).verify_signature(
            body.decode(),
            headers["X-Twilio-Email-Event-Webhook-Signature"],
            headers["X-Twilio-Email-Event-Webhook-Timestamp"],
        )

    def test_provider_sign_with_a_private_key_verifies_with_the_sdk(self) -> None:
        # oracle: sendgrid SDK 6.12.5 (EventWebhook.verify_signature)
        secret = SendGridProvider.generate_secret()
        signed = SendGridProvider().sign(
            VECTOR_BODY,
            secret,
            url="https://hooks.example.com/",
            delivery_id="",
            timestamp=1600112502,
            content_type="application/json",
        )
        public = shown_from_secret(secret)
        assert EventWebhook(public).verify_signature(
            VECTOR_BODY.decode(),
            signed.headers["X-Twilio-Email-Event-Webhook-Signature"],
            "1600112502",
        )

    def test_sign_with_only_the_public_key_says_it_needs_the_private_one(self) -> None:
        with pytest.raises(ValueError, match="private key"):
            SendGridProvider().sign(
                b"[]",
                VECTOR_KEY,
                url="https://hooks.example.com/",
                delivery_id="",
                timestamp=1,
                content_type="application/json",
            )

    def test_key_in_pem_form_is_accepted(self) -> None:
        pem = (
            KEY.public_key()
            .public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            .decode()
        )
        assert load_key(pem).public_numbers() == KEY.public_key().public_numbers()

    @pytest.mark.parametrize(
        "secret",
        [
            "not a key",
            base64.b64encode(b"random bytes").decode(),
            # A P-384 key: SendGrid signs with P-256 only.
            base64.b64encode(
                ec.generate_private_key(ec.SECP384R1())
                .public_key()
                .public_bytes(
                    serialization.Encoding.DER,
                    serialization.PublicFormat.SubjectPublicKeyInfo,
                )
            ).decode(),
        ],
    )
    def test_secret_that_is_no_p256_key_is_a_config_error(self, secret) -> None:
        with pytest.raises(ProviderConfigError):
            load_key(secret)

    # -- provider-specific -----------------------------------------------------------

    def test_batch_is_typed_and_identified_by_its_events(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, self.secret))
        event = Event.objects.get()
        ids = [item["sg_event_id"] for item in json.loads(body)]
        assert event.delivery_id == ",".join(ids)
        assert event.event_type == "delivered"

    def test_mixed_batch_is_typed_batch(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        events = json.loads(self.sample())
        events[1]["event"] = "open"
        body = json.dumps(events).encode()
        self.deliver(provider_client, body, self.sign(body, self.secret))
        assert Event.objects.get().event_type == "batch"

    def test_stale_timestamp_is_rejected_when_the_endpoint_sets_a_tolerance(
        self, provider_client: Client
    ) -> None:
        make_endpoint("contract", "sendgrid", self.secret, tolerance_seconds=300)
        body = self.sample()
        headers = self.sign(body, self.secret, timestamp=int(time.time()) - 3600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )

    def test_endpoint_holding_a_private_key_verifies_with_its_public_half(
        self, provider_client: Client
    ) -> None:
        private = base64.b64encode(
            KEY.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ).decode()
        make_endpoint("contract", "sendgrid", private)
        body = self.sample()
        response = self.deliver(provider_client, body, self.sign(body, self.secret))
        assert response.status_code == 200, response.content


def shown_from_secret(secret: str) -> str:
    key = load_key(secret)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return shown_key(key)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("event_type", ["delivered", "open"])
def test_webhooks_send_delivers_a_sample_the_sdk_verifies(
    live_server, event_type
) -> None:
    secret = SendGridProvider.generate_secret()
    make_endpoint("send-sendgrid", "sendgrid", secret)
    event = send_and_check(live_server.url, "send-sendgrid", event_type)
    assert event.event_type == event_type
    assert EventWebhook(shown_from_secret(secret)).verify_signature(
        bytes(event.body).decode(),
        event.headers["x-twilio-email-event-webhook-signature"],
        event.headers["x-twilio-email-event-webhook-timestamp"],
    )


@pytest.mark.django_db
def test_endpoint_whose_secret_is_no_key_answers_503_not_500(provider_client) -> None:
    # A misconfigured endpoint: SendGrid retries a 503 once an operator fixes the key.
    make_endpoint("contract", "sendgrid", "pasted the wrong thing")
    body = b'[{"event": "delivered", "sg_event_id": "abc"}]'
    signature = KEY.sign(b"1700000000" + body, ec.ECDSA(hashes.SHA256()))
    response = provider_client.post(
        "/webhooks/contract/",
        body,
        content_type="application/json",
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(
                signature
            ).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": "1700000000",
        },
    )
    assert response.status_code == 503
    assert response.json() == {"error": "unavailable"}
    assert Event.objects.count() == 0
