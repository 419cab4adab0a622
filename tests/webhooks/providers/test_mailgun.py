"""Mailgun. Mailgun publishes no vector; its SDK checks what these tests sign
(oracle: mailgun SDK 1.10.0, SecurityGuard.verify_webhook).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from urllib.parse import parse_qsl, urlencode

import pytest
from django.test import Client
from mailgun.security import SecurityGuard

from tests.webhooks.providers.contract import ProviderContract
from tests.webhooks.providers.sending import send_every_sample
from webhooks.models import Endpoint, Event
from webhooks.providers.mailgun import MailgunProvider
from webhooks.sending import samples

# Mailgun publishes no vector; signatures here follow the rule of its SDK's
# SecurityGuard.verify_webhook (hex HMAC-SHA256 of timestamp + token), which checks
# them too. The signature rides in the body, so the contract's hooks that build a
# signed delivery are overridden; the body itself is not signed (no tamper test).
SECRET = "key-8b1c0d7e6f5a4b3c2d1e0f9a8b7c6d5e"
OTHER_SECRET = "key-1f2e3d4c5b6a79880a9b8c7d6e5f4a3b"
FORM = "application/x-www-form-urlencoded"


def mailgun_signature(timestamp: str, token: str, key: str) -> str:
    return hmac.new(
        key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()


def signed_json(
    key: str, timestamp: int | None = None, event: str = "delivered"
) -> bytes:
    document = json.loads(samples.render("mailgun", event, now=time.time()).body)
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = secrets.token_hex(25)
    document["signature"] = {
        "timestamp": stamp,
        "token": token,
        "signature": mailgun_signature(stamp, token, key),
    }
    return json.dumps(document).encode()


class TestMailgun(ProviderContract):
    provider = "mailgun"
    secret = SECRET
    other_secret = OTHER_SECRET

    def signed(self, secret, *, timestamp=None):
        return signed_json(secret, timestamp), {"User-Agent": "mailgun/treq-16.12.0"}

    def unsigned(self, body, headers):
        document = json.loads(body)
        del document["signature"]
        return json.dumps(document).encode(), headers

    def garbled(self, body, headers):
        document = json.loads(body)
        document["signature"]["signature"] = "not hex"
        return json.dumps(document).encode(), headers

    def test_non_utf8_non_json_body_with_valid_signature_is_stored_byte_exact(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # Overrides the contract: a body that does not parse cannot carry the
        # signature, so it is refused as unsigned.
        body = b"\xff\xfe not json \x00 " + uuid.uuid4().bytes
        response = self.deliver(provider_client, body, {}, "application/octet-stream")
        self.assert_rejected(response, "missing_signature")

    def test_stale_timestamp_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(SECRET, timestamp=int(time.time()) - 3600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )

    # -- the SDK -----------------------------------------------------------------------

    def test_the_sdk_accepts_the_signatures_these_tests_make(self) -> None:
        # oracle: mailgun SDK 1.10.0 (SecurityGuard.verify_webhook)
        fields = json.loads(signed_json(SECRET))["signature"]
        assert SecurityGuard.verify_webhook(
            SECRET, fields["token"], fields["timestamp"], fields["signature"]
        )
        assert not SecurityGuard.verify_webhook(
            OTHER_SECRET, fields["token"], fields["timestamp"], fields["signature"]
        )

    def test_the_sdk_accepts_what_sign_makes(self) -> None:
        # oracle: mailgun SDK 1.10.0 (SecurityGuard.verify_webhook)
        body = samples.render("mailgun", "failed", now=time.time()).body
        signed = MailgunProvider().sign(
            body,
            SECRET,
            url="",
            delivery_id="",
            timestamp=int(time.time()),
            content_type="application/json",
        )
        assert signed.body is not None
        fields = json.loads(signed.body)["signature"]
        assert SecurityGuard.verify_webhook(
            SECRET, fields["token"], fields["timestamp"], fields["signature"]
        )

    def test_sign_puts_the_signature_into_a_form_body_too(self) -> None:
        body = urlencode({"event": "opened", "recipient": "alice@example.com"}).encode()
        signed = MailgunProvider().sign(
            body,
            SECRET,
            url="",
            delivery_id="",
            timestamp=1718000000,
            content_type=FORM,
        )
        assert signed.body is not None
        form = dict(parse_qsl(signed.body.decode()))
        assert form["event"] == "opened" and form["timestamp"] == "1718000000"
        assert form["signature"] == mailgun_signature(
            form["timestamp"], form["token"], SECRET
        )

    def test_sign_refuses_a_body_that_cannot_carry_the_signature(self) -> None:
        with pytest.raises(ValueError):
            MailgunProvider().sign(
                b"[1, 2]",
                SECRET,
                url="",
                delivery_id="",
                timestamp=0,
                content_type="application/json",
            )

    # -- provider-specific -------------------------------------------------------------

    def test_token_is_the_dedup_key_and_event_the_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(SECRET)
        self.deliver(provider_client, body, headers)
        event = Event.objects.get()
        assert event.delivery_id == json.loads(body)["signature"]["token"]
        assert event.event_type == "delivered"

    def test_event_data_is_not_signed_so_an_altered_event_still_verifies(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # Mailgun signs only timestamp + token: this is the documented scheme, and
        # why the token must be remembered and the timestamp fresh.
        document = json.loads(signed_json(SECRET))
        document["event-data"]["recipient"] = "mallory@example.com"
        response = self.deliver(provider_client, json.dumps(document).encode(), {})
        assert response.status_code == 200, response.content

    def test_a_replayed_token_with_other_event_data_is_a_duplicate(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = signed_json(SECRET)
        first = self.deliver(provider_client, body, {})
        document = json.loads(body)
        document["event-data"]["event"] = "failed"
        replay = self.deliver(provider_client, json.dumps(document).encode(), {})
        assert replay.json() == {"status": "duplicate", "id": first.json()["id"]}
        assert Event.objects.get().event_type == "delivered"

    def test_changed_token_is_a_mismatch(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        document = json.loads(signed_json(SECRET))
        document["signature"]["token"] = secrets.token_hex(25)
        self.assert_rejected(
            self.deliver(provider_client, json.dumps(document).encode(), {}),
            "signature_mismatch",
        )

    def test_legacy_form_webhook_is_verified_and_typed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        stamp, token = str(int(time.time())), secrets.token_hex(25)
        body = urlencode(
            {
                "event": "opened",
                "recipient": "alice@example.com",
                "timestamp": stamp,
                "token": token,
                "signature": mailgun_signature(stamp, token, SECRET),
            }
        ).encode()
        response = self.deliver(provider_client, body, {}, FORM)
        assert response.status_code == 200, response.content
        event = Event.objects.get()
        assert event.event_type == "opened"
        assert event.delivery_id == token

    def test_signature_without_token_is_malformed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        document = json.loads(signed_json(SECRET))
        del document["signature"]["token"]
        self.assert_rejected(
            self.deliver(provider_client, json.dumps(document).encode(), {}),
            "malformed_signature",
        )


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_as_the_mailgun_sdk_verifies(
    live_server,
) -> None:
    # oracle: mailgun SDK 1.10.0 (SecurityGuard.verify_webhook)
    for event in send_every_sample(live_server.url, "mailgun", SECRET):
        fields = json.loads(bytes(event.body))["signature"]
        assert SecurityGuard.verify_webhook(
            SECRET, fields["token"], fields["timestamp"], fields["signature"]
        )
        assert event.delivery_id == fields["token"]
