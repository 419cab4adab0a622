"""Square. The published examples of Square's SDK tests and the SDK itself
(oracle: squareup 46.0.0.20260916, webhooks_helper.verify_signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.test import Client, override_settings
from square.utils.webhooks_helper import verify_signature

from tests.factories import make_endpoint
from tests.webhooks.providers.contract import SLUG, SignedBodyContract
from tests.webhooks.providers.sending import send_every_sample, sent_url
from webhooks.exceptions import InvalidSignature
from webhooks.models import Endpoint, Event
from webhooks.providers.delivery import Delivery
from webhooks.providers.square import SquareProvider
from webhooks.sending import samples

# square/square-python-sdk tests/integration/test_webhooks_helper.py
VECTOR_KEY = "Ibxx_5AKakO-3qeNVR61Dw"
VECTOR_URL = "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9"
VECTOR_BODY = (
    b'{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification",'
    b'"event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f",'
    b'"created_at":"2022-07-13T20:30:59.037339943Z",'
    b'"data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}'
)
VECTOR_SIGNATURE = "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4="
ESCAPED_KEY = "signature-key"
ESCAPED_URL = "https://webhook.site/webhooks"
ESCAPED_BODY = b'{"data":{"type":"webhooks","id":">id<"}}'
ESCAPED_SIGNATURE = "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U="

TEST_ORIGIN = "http://testserver"
SECRET = "sq0wss-3mV8cT1qLw9ZpR4bN7yKdA"
OTHER_SECRET = "sq0wss-Hx2Fj6Ue0sGk5Wm8Qa1Tz3"


def square_signature(url: str, body: bytes, key: str) -> str:
    mac = hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def verify_at(url: str, body: bytes, signature: str, key: str, **options) -> None:
    delivery = Delivery(
        method="POST",
        headers={
            "content-type": "application/json",
            "x-square-hmacsha256-signature": signature,
        },
        body=body,
        source_ip="127.0.0.1",
        url=url,
        received_at=time.time(),
    )
    SquareProvider(options).verify(delivery, [key], tolerance=None, now=time.time())


class TestSquare(SignedBodyContract):
    provider = "square"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return samples.render("square", "payment.updated", now=time.time()).body

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        url = TEST_ORIGIN + self.path(body, content_type)
        return {"x-square-hmacsha256-signature": square_signature(url, body, secret)}

    def malformed(self, headers):
        return {"x-square-hmacsha256-signature": "***"}

    def without_signature(self, headers):
        return {}

    # -- official vectors and the SDK --------------------------------------------------

    def test_official_vectors_verify_with_the_sdk_and_here(self) -> None:
        # oracle: squareup 46.0.0.20260916 and the published examples in square-python-sdk's tests
        for key, url, body, signature in (
            (VECTOR_KEY, VECTOR_URL, VECTOR_BODY, VECTOR_SIGNATURE),
            (ESCAPED_KEY, ESCAPED_URL, ESCAPED_BODY, ESCAPED_SIGNATURE),
        ):
            assert square_signature(url, body, key) == signature
            assert verify_signature(
                request_body=body.decode(),
                signature_header=signature,
                signature_key=key,
                notification_url=url,
            )
            verify_at(url, body, signature, key)

    def test_official_vector_at_another_url_is_a_mismatch(self) -> None:
        # oracle: published example in square-python-sdk's tests
        with pytest.raises(InvalidSignature) as error:
            verify_at(VECTOR_URL + "/", VECTOR_BODY, VECTOR_SIGNATURE, VECTOR_KEY)
        assert error.value.reason == "signature_mismatch"

    def test_the_sdk_accepts_what_sign_makes(self) -> None:
        # oracle: squareup 46.0.0.20260916 (webhooks_helper.verify_signature)
        body = self.sample()
        url = "https://hooks.example.com/webhooks/square/"
        signed = SquareProvider().sign(
            body,
            SECRET,
            url=url,
            delivery_id="",
            timestamp=0,
            content_type="application/json",
        )
        assert verify_signature(
            request_body=body.decode(),
            signature_header=signed.headers["x-square-hmacsha256-signature"],
            signature_key=SECRET,
            notification_url=url,
        )

    # -- the signed URL ----------------------------------------------------------------

    def test_event_id_is_the_dedup_key_and_type_the_event_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, SECRET))
        event = Event.objects.get()
        assert event.delivery_id == json.loads(body)["event_id"]
        assert event.event_type == "payment.updated"

    @override_settings(WEBHOOKS_TRUSTED_PROXIES=["127.0.0.1/32"])
    def test_behind_a_trusted_proxy_the_forwarded_public_url_is_signed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # oracle: squareup 46.0.0.20260916 (webhooks_helper.verify_signature)
        # Square called https://hooks.example.com/...; the proxy in front of this
        # server forwarded it over plain HTTP to another host name.
        body = self.sample()
        public = f"https://hooks.example.com/webhooks/{SLUG}/"
        headers = {
            "x-square-hmacsha256-signature": square_signature(public, body, SECRET),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "hooks.example.com",
            "X-Forwarded-For": "54.245.1.154",
        }
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content
        assert Event.objects.get().source_ip == "54.245.1.154"
        assert verify_signature(
            request_body=body.decode(),
            signature_header=headers["x-square-hmacsha256-signature"],
            signature_key=SECRET,
            notification_url=public,
        )

    @override_settings(WEBHOOKS_TRUSTED_PROXIES=["127.0.0.1/32"])
    def test_behind_a_trusted_proxy_the_internal_url_no_longer_verifies(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = {
            **self.sign(body, SECRET),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "hooks.example.com",
        }
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "signature_mismatch"
        )

    def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        public = f"https://hooks.example.com/webhooks/{SLUG}/"
        headers = {
            "x-square-hmacsha256-signature": square_signature(public, body, SECRET),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "hooks.example.com",
        }
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "signature_mismatch"
        )

    def test_notification_url_option_is_the_signed_url(
        self, provider_client: Client
    ) -> None:
        configured = "https://shop.example.com/square/hooks"
        make_endpoint(SLUG, "square", SECRET, options={"notification_url": configured})
        body = self.sample()
        headers = {
            "x-square-hmacsha256-signature": square_signature(configured, body, SECRET)
        }
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_as_the_square_sdk_verifies(
    live_server,
) -> None:
    # oracle: squareup 46.0.0.20260916 (webhooks_helper.verify_signature)
    for event in send_every_sample(live_server.url, "square", SECRET):
        assert verify_signature(
            request_body=bytes(event.body).decode(),
            signature_header=event.headers["x-square-hmacsha256-signature"],
            signature_key=SECRET,
            notification_url=sent_url(live_server.url),
        )
