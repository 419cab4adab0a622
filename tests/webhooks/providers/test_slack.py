"""Slack. The contract signs with slack_sdk (oracle: slack_sdk 3.47.0,
SignatureVerifier); the published example is checked too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import urlencode

import pytest
from django.test import Client
from slack_sdk.signature import Clock, SignatureVerifier

from tests.webhooks.payloads.loader import payload
from tests.webhooks.providers.contract import TimestampedContract
from webhooks.exceptions import InvalidSignature
from webhooks.models import Endpoint, Event
from webhooks.providers.delivery import Delivery
from webhooks.providers.slack import SlackProvider

# Slack's worked example ("Verifying requests from Slack"), also in slack_sdk's tests.
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = 1531420618
VECTOR_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

SECRET = VECTOR_SECRET
OTHER_SECRET = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def raw_signature(body: bytes, secret: str, timestamp: int) -> str:
    """``v0=`` hex HMAC-SHA256 of ``v0:ts:body`` over raw bytes (slack_sdk only signs text)."""
    signed = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def vector_delivery(
    body: bytes = VECTOR_BODY, signature: str = VECTOR_SIGNATURE
) -> Delivery:
    return Delivery(
        method="POST",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": str(VECTOR_TIMESTAMP),
            "x-slack-signature": signature,
        },
        body=body,
        source_ip="127.0.0.1",
        url="https://hooks.example.com/webhooks/slack/",
        received_at=VECTOR_TIMESTAMP,
    )


class TestSlack(TimestampedContract):
    provider = "slack"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        body = json.loads(payload("slack", "event_callback.json"))
        body["event_id"] = "Ev" + uuid.uuid4().hex[:10].upper()
        body["event"]["text"] = f"<@U0LAN0Z89> deploy {uuid.uuid4().hex[:8]} please"
        return json.dumps(body).encode()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        timestamp = int(time.time()) if timestamp is None else timestamp
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            signature = raw_signature(body, secret, timestamp)
        else:
            signature = SignatureVerifier(secret).generate_signature(
                timestamp=str(timestamp), body=body
            )
        return {
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }

    def malformed(self, headers):
        return {**headers, "X-Slack-Signature": "v1=" + "0" * 64}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "X-Slack-Signature"}

    # -- official vector -------------------------------------------------------------

    def test_sdk_reproduces_the_official_vector(self) -> None:
        # oracle: slack_sdk 3.47.0 and the published example in Slack's docs (Verifying requests from Slack)
        verifier = SignatureVerifier(VECTOR_SECRET, clock=FixedClock(VECTOR_TIMESTAMP))
        signature = verifier.generate_signature(
            timestamp=str(VECTOR_TIMESTAMP), body=VECTOR_BODY
        )
        assert signature == VECTOR_SIGNATURE
        assert (
            raw_signature(VECTOR_BODY, VECTOR_SECRET, VECTOR_TIMESTAMP)
            == VECTOR_SIGNATURE
        )
        assert verifier.is_valid(VECTOR_BODY, str(VECTOR_TIMESTAMP), VECTOR_SIGNATURE)

    def test_official_vector_verifies_at_its_own_time(self) -> None:
        # oracle: published example in Slack's docs (Verifying requests from Slack)
        SlackProvider().verify(
            vector_delivery(), [VECTOR_SECRET], tolerance=300, now=VECTOR_TIMESTAMP + 10
        )

    def test_official_vector_with_one_changed_byte_is_a_mismatch(self) -> None:
        # oracle: published example in Slack's docs (Verifying requests from Slack)
        body = VECTOR_BODY.replace(b"roadrunner", b"roadRunner")
        with pytest.raises(InvalidSignature) as error:
            SlackProvider().verify(
                vector_delivery(body),
                [VECTOR_SECRET],
                tolerance=300,
                now=VECTOR_TIMESTAMP,
            )
        assert error.value.reason == "signature_mismatch"

    def test_official_vector_is_stale_today(self) -> None:
        # oracle: published example in Slack's docs (Verifying requests from Slack)
        with pytest.raises(InvalidSignature) as error:
            SlackProvider().verify(
                vector_delivery(), [VECTOR_SECRET], tolerance=300, now=time.time()
            )
        assert error.value.reason == "timestamp_out_of_tolerance"

    def test_slash_command_form_is_stored_with_command_type_and_trigger_id(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # The vector's body, re-signed now (the original timestamp is years old).
        headers = self.sign(VECTOR_BODY, SECRET)
        response = self.deliver(
            provider_client, VECTOR_BODY, headers, "application/x-www-form-urlencoded"
        )
        assert response.status_code == 200, response.content
        event = Event.objects.get()
        assert event.event_type == "/webhook-collect"
        assert (
            event.delivery_id
            == "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
        )
        assert event.payload["user_name"] == "roadrunner"

    # -- provider-specific -----------------------------------------------------------

    def test_url_verification_answers_the_challenge_and_is_recorded_skipped(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = payload("slack", "url_verification.json")
        response = self.deliver(provider_client, body, self.sign(body, SECRET))
        assert response.status_code == 200, response.content
        assert response.json() == {
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        }
        event = Event.objects.get()
        assert event.status == Event.Status.SKIPPED
        assert event.event_type == "url_verification"

    def test_url_verification_with_a_bad_signature_gets_no_challenge(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = payload("slack", "url_verification.json")
        response = self.deliver(provider_client, body, self.sign(body, OTHER_SECRET))
        self.assert_rejected(response, "signature_mismatch")
        assert b"3eZbrw1aBm2rZgRNFdxV" not in response.content

    def test_future_timestamp_beyond_tolerance_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET, timestamp=int(time.time()) + 3600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )

    def test_timestamp_within_tolerance_either_way_is_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        for skew in (-240, 240):
            body = self.sample()
            headers = self.sign(body, SECRET, timestamp=int(time.time()) + skew)
            assert self.deliver(provider_client, body, headers).status_code == 200

    def test_event_callback_type_is_the_inner_event_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, SECRET))
        event = Event.objects.get()
        assert event.event_type == "app_mention"
        assert event.delivery_id == json.loads(body)["event_id"]

    def test_retry_with_the_same_event_id_is_a_duplicate(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        first = self.deliver(provider_client, body, self.sign(body, SECRET))
        retry = {
            **self.sign(body, SECRET, timestamp=int(time.time()) + 1),
            "X-Slack-Retry-Num": "1",
            "X-Slack-Retry-Reason": "http_timeout",
        }
        second = self.deliver(provider_client, body, retry)
        assert second.status_code == 200, second.content
        assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
        assert Event.objects.count() == 1

    def test_interactivity_payload_field_is_parsed_as_json(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        interaction = {
            "type": "block_actions",
            "trigger_id": f"{uuid.uuid4().int % 10**12}.47445629121.{uuid.uuid4().hex}",
            "user": {"id": "U2CERLKJA"},
            "actions": [{"action_id": "approve", "value": "yes"}],
        }
        body = urlencode({"payload": json.dumps(interaction)}).encode()
        response = self.deliver(
            provider_client,
            body,
            self.sign(body, SECRET),
            "application/x-www-form-urlencoded",
        )
        assert response.status_code == 200, response.content
        event = Event.objects.get()
        assert event.payload == interaction
        assert event.event_type == "block_actions"
        assert event.delivery_id == interaction["trigger_id"]

    def test_missing_timestamp_header_is_missing_signature(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        del headers["X-Slack-Request-Timestamp"]
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "missing_signature"
        )

    def test_non_numeric_timestamp_is_malformed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = {**self.sign(body, SECRET), "X-Slack-Request-Timestamp": "yesterday"}
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "malformed_signature"
        )
