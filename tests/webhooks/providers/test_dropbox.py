"""Dropbox: X-Dropbox-Signature (hex HMAC-SHA256 of the body, app secret) and the
GET ?challenge= echo.

The contract's signatures are made here as Dropbox documents them (oracle: none
published by Dropbox; our reading of the docs). Dropbox ships no receiving SDK
and no vector; one third-party library's test vector is checked below.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from urllib.parse import quote

import pytest
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.providers.contract import SignedBodyContract
from tests.webhooks.providers.sending import send_every_sample
from webhooks.exceptions import InvalidSignature
from webhooks.models import Endpoint, Event
from webhooks.providers.delivery import Delivery
from webhooks.providers.dropbox import DropboxProvider

APP_SECRET = "x7k2m9q4w1z8c5v"
OTHER_SECRET = "p3n6b0t5r8y2u4i"


def dropbox_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def notification() -> bytes:
    return json.dumps(
        {
            "list_folder": {"accounts": ["dbid:AAH4f99T0taONIb-" + uuid.uuid4().hex]},
            "delta": {"users": [uuid.uuid4().int % 10**8]},
        }
    ).encode()


class TestDropbox(SignedBodyContract):
    provider = "dropbox"
    secret = APP_SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return notification()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return {
            "X-Dropbox-Signature": dropbox_signature(secret, body),
            "User-Agent": "DropboxWebhooks/1.0",
        }

    def malformed(self, headers):
        return {**headers, "X-Dropbox-Signature": "not hex"}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "X-Dropbox-Signature"}

    # A notification says only "these accounts changed, look again": the same body
    # later is news, not a copy, so every notification is stored and processed. The
    # contract's duplicate test does not apply; the one below says what does.
    test_same_delivery_twice_is_duplicate_with_one_row = None

    def test_same_notification_twice_is_stored_twice(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(self.secret)
        first = self.deliver(provider_client, body, headers)
        second = self.deliver(provider_client, body, headers)
        assert first.json()["status"] == second.json()["status"] == "received"
        assert first.json()["id"] != second.json()["id"]
        assert Event.objects.filter(status=Event.Status.PENDING).count() == 2
        assert {event.event_type for event in Event.objects.all()} == {"list_folder"}

    # -- the verification request --------------------------------------------------------

    def challenge(self, client: Client, value: str):
        return client.get(f"/webhooks/contract/?challenge={quote(value)}")

    def test_challenge_is_echoed_as_plain_text_that_is_not_sniffed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        response = self.challenge(provider_client, "abc123")
        assert response.status_code == 200, response.content
        assert response.content == b"abc123"
        assert response["Content-Type"].startswith("text/plain")
        assert response["X-Content-Type-Options"] == "nosniff"
        event = Event.objects.get()
        assert event.status == Event.Status.SKIPPED
        assert event.event_type == "challenge"

    def test_markup_in_the_challenge_comes_back_as_text_only(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        value = "<script>alert(1)</script>"
        response = self.challenge(provider_client, value)
        assert response.content == value.encode()
        assert response["Content-Type"].startswith("text/plain")
        assert response["X-Content-Type-Options"] == "nosniff"

    def test_each_verification_request_is_answered(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        for value in ("first", "second", "first"):
            assert self.challenge(provider_client, value).content == value.encode()
        assert Event.objects.count() == 2

    def test_get_without_a_challenge_is_refused(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        self.assert_rejected(
            provider_client.get("/webhooks/contract/"), "missing_signature"
        )
        self.assert_rejected(
            provider_client.get("/webhooks/contract/?challenge="), "missing_signature"
        )

    def test_put_is_not_allowed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        response = provider_client.put("/webhooks/contract/", b"{}")
        assert response.status_code == 405
        assert Event.objects.count() == 0

    def test_signature_in_upper_case_hex_is_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = {"X-Dropbox-Signature": dropbox_signature(APP_SECRET, body).upper()}
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content


def test_third_party_library_vector_verifies() -> None:
    # oracle: published example in a third-party library's tests
    # (hapi-dropbox-webhooks 1.1.0, test/index.js); Dropbox publishes none.
    body = b'{"delta": {"users": [12345]}}'
    delivery = Delivery(
        method="POST",
        headers={
            "content-type": "application/json",
            "x-dropbox-signature": (
                "0a8c16b085420b960dc78664279fe09e936a2a01b1f91064869d9e77dfd64529"
            ),
        },
        body=body,
        source_ip="162.125.0.1",
        url="https://hooks.example.com/webhooks/dropbox/",
        received_at=0.0,
    )
    DropboxProvider().verify(delivery, ["the_secret"], tolerance=None, now=0.0)
    with pytest.raises(InvalidSignature):
        DropboxProvider().verify(delivery, ["the_secreT"], tolerance=None, now=0.0)


def test_generated_secret_has_the_form_of_an_app_secret() -> None:
    secret = DropboxProvider.generate_secret()
    assert len(secret) == 15 and secret.isalnum() and secret == secret.lower()


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_delivers_every_sample_signed_with_the_app_secret(
    live_server,
) -> None:
    for event in send_every_sample(live_server.url, "dropbox", APP_SECRET):
        assert event.headers["x-dropbox-signature"] == dropbox_signature(
            APP_SECRET, bytes(event.body)
        )
        assert json.loads(bytes(event.body))["list_folder"]["accounts"]


def test_endpoint_made_with_make_endpoint_is_a_dropbox_one(db) -> None:
    assert make_endpoint("d", "dropbox", APP_SECRET).get_provider().id == "dropbox"
