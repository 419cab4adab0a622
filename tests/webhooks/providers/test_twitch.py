"""Twitch EventSub. Twitch publishes no vector and ships no Python SDK; the
contract signs by the docs' rule (oracle: none published; our reading of the docs),
and a third-party library's published example is checked too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.payloads.loader import payload
from tests.webhooks.providers.contract import TimestampedContract
from tests.webhooks.providers.live_send import send_and_check
from webhooks.exceptions import InvalidSignature
from webhooks.models import Endpoint, Event
from webhooks.providers.delivery import Delivery
from webhooks.providers.twitch import TwitchProvider, parse_timestamp

SECRET = "s3cRe7-subscription-secret"
OTHER_SECRET = "another-subscription-secret"

# The vector of the twitch_api library's tests (twitch-rs), a real channel.follow
# notification with its headers.
VECTOR_SECRET = "secretabcd"
VECTOR_ID = "ae2ff348-e102-16be-a3eb-6830c1bf38d2"
VECTOR_TIMESTAMP = "2021-02-19T23:47:00.8091512Z"
VECTOR_SIGNATURE = (
    "sha256=d10f5bd9474b7ac7bd7105eb79c2d52768b4d0cd2a135982c3bf5a1d59a78823"
)


def rfc3339(timestamp: float) -> str:
    """As Twitch writes times: UTC with a seven-digit fraction."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}4Z"


def twitch_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """As Twitch documents it: sha256= hex HMAC-SHA256 of id + timestamp + body."""
    message = message_id.encode() + timestamp.encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def subscription(kind: str, status: str = "enabled") -> dict:
    return {
        "id": str(uuid.uuid4()),
        "status": status,
        "type": kind,
        "version": "1",
        "cost": 0,
        "condition": {"broadcaster_user_id": "1337"},
        "transport": {"method": "webhook", "callback": "https://example.com/hook"},
        "created_at": "2026-11-22T10:00:00.123456789Z",
    }


class TestTwitch(TimestampedContract):
    provider = "twitch"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return json.dumps(
            {
                "subscription": subscription("stream.online"),
                "event": {
                    "id": str(uuid.uuid4().int % 10**10),
                    "broadcaster_user_id": "1337",
                    "broadcaster_user_login": "cool_user",
                    "type": "live",
                    "started_at": rfc3339(time.time()),
                },
            }
        ).encode()

    def sign(
        self,
        body,
        secret,
        *,
        timestamp=None,
        content_type="",
        message_type="notification",
        message_id=None,
    ):
        moment = rfc3339(time.time() if timestamp is None else timestamp)
        message_id = message_id or str(uuid.uuid4())
        return {
            "Twitch-Eventsub-Message-Id": message_id,
            "Twitch-Eventsub-Message-Retry": "0",
            "Twitch-Eventsub-Message-Type": message_type,
            "Twitch-Eventsub-Message-Signature": twitch_signature(
                secret, message_id, moment, body
            ),
            "Twitch-Eventsub-Message-Timestamp": moment,
            "Twitch-Eventsub-Subscription-Type": "stream.online",
            "Twitch-Eventsub-Subscription-Version": "1",
        }

    def malformed(self, headers):
        return {**headers, "Twitch-Eventsub-Message-Signature": "sha1=" + "0" * 40}

    def without_signature(self, headers):
        return {
            k: v for k, v in headers.items() if k != "Twitch-Eventsub-Message-Signature"
        }

    # -- the library vector --------------------------------------------------------------

    def vector_delivery(self, body: bytes) -> Delivery:
        return Delivery(
            method="POST",
            headers={
                "content-type": "application/json",
                "twitch-eventsub-message-id": VECTOR_ID,
                "twitch-eventsub-message-timestamp": VECTOR_TIMESTAMP,
                "twitch-eventsub-message-signature": VECTOR_SIGNATURE,
                "twitch-eventsub-message-type": "notification",
            },
            body=body,
            source_ip="127.0.0.1",
            url="https://example.com/hook",
            received_at=time.time(),
        )

    def test_documented_algorithm_reproduces_the_vector(self) -> None:
        # oracle: published example in a third-party library's tests (twitch-rs/twitch_api)
        body = payload("twitch", "channel.follow.vector.json")
        assert len(body) == 458  # the vector's Content-Length
        assert (
            twitch_signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, body)
            == VECTOR_SIGNATURE
        )

    def test_vector_verifies_at_its_own_time_and_is_stale_today(self) -> None:
        # oracle: published example in a third-party library's tests (twitch-rs/twitch_api)
        body = payload("twitch", "channel.follow.vector.json")
        sent = parse_timestamp(VECTOR_TIMESTAMP)
        provider = TwitchProvider()
        provider.verify(
            self.vector_delivery(body), [VECTOR_SECRET], tolerance=600, now=sent + 60
        )
        with pytest.raises(InvalidSignature) as error:
            provider.verify(
                self.vector_delivery(body),
                [VECTOR_SECRET],
                tolerance=600,
                now=time.time(),
            )
        assert error.value.reason == "timestamp_out_of_tolerance"

    def test_timestamp_keeps_its_fraction_and_offset(self) -> None:
        assert parse_timestamp(VECTOR_TIMESTAMP) == pytest.approx(
            datetime(2021, 2, 19, 23, 47, 0, 809151, tzinfo=UTC).timestamp(), abs=1e-6
        )
        assert parse_timestamp("2021-02-20T01:47:00+02:00") == parse_timestamp(
            "2021-02-19T23:47:00Z"
        )

    @pytest.mark.parametrize(
        "value", ["1613778420", "2021-02-19 23:47:00Z", "2021-02-30T00:00:00Z", ""]
    )
    def test_timestamp_not_rfc3339_is_malformed(self, value) -> None:
        with pytest.raises(InvalidSignature) as error:
            parse_timestamp(value)
        assert error.value.reason == "malformed_signature"

    # -- the challenge and revocations -----------------------------------------------------

    def test_callback_verification_answers_the_raw_challenge_as_text(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        challenge = "pogchamp-kappa-360noscope-vohiyo"
        body = json.dumps(
            {
                "challenge": challenge,
                "subscription": subscription(
                    "stream.online", "webhook_callback_verification_pending"
                ),
            }
        ).encode()
        headers = self.sign(body, SECRET, message_type="webhook_callback_verification")
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content
        assert response.content == challenge.encode()
        assert response["Content-Type"] == "text/plain"
        event = Event.objects.get()
        assert event.status == Event.Status.SKIPPED
        assert event.event_type == "webhook_callback_verification"

    def test_callback_verification_with_a_bad_signature_gets_no_challenge(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = json.dumps({"challenge": "secret-challenge-value"}).encode()
        headers = self.sign(
            body, OTHER_SECRET, message_type="webhook_callback_verification"
        )
        response = self.deliver(provider_client, body, headers)
        self.assert_rejected(response, "signature_mismatch")
        assert b"secret-challenge-value" not in response.content

    def test_revocation_is_stored_as_an_event_and_answered_2xx(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = json.dumps(
            {"subscription": subscription("stream.online", "authorization_revoked")}
        ).encode()
        response = self.deliver(
            provider_client, body, self.sign(body, SECRET, message_type="revocation")
        )
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "received"
        event = Event.objects.get()
        assert event.event_type == "revocation"
        assert event.status == Event.Status.PENDING
        assert event.payload["subscription"]["status"] == "authorization_revoked"

    # -- provider-specific -----------------------------------------------------------

    def test_notification_is_typed_by_subscription_and_identified_by_message_id(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        self.deliver(provider_client, body, headers)
        event = Event.objects.get()
        assert event.event_type == "stream.online"
        assert event.delivery_id == headers["Twitch-Eventsub-Message-Id"]

    def test_retry_with_the_same_message_id_is_a_duplicate(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        message_id = str(uuid.uuid4())
        first = self.deliver(
            provider_client, body, self.sign(body, SECRET, message_id=message_id)
        )
        retry = {
            **self.sign(
                body, SECRET, message_id=message_id, timestamp=int(time.time()) + 2
            ),
            "Twitch-Eventsub-Message-Retry": "1",
        }
        second = self.deliver(provider_client, body, retry)
        assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
        assert Event.objects.count() == 1

    def test_message_nine_minutes_old_is_accepted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET, timestamp=time.time() - 540)
        assert self.deliver(provider_client, body, headers).status_code == 200

    def test_missing_message_id_is_missing_signature(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        del headers["Twitch-Eventsub-Message-Id"]
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "missing_signature"
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("event_type", ["stream.online", "channel.subscribe"])
def test_webhooks_send_delivers_a_sample_signed_as_twitch_documents(
    live_server, event_type
) -> None:
    make_endpoint("send-twitch", "twitch", SECRET)
    event = send_and_check(live_server.url, "send-twitch", event_type)
    assert event.event_type == event_type
    headers = event.headers
    assert event.delivery_id == headers["twitch-eventsub-message-id"]
    assert headers["twitch-eventsub-message-signature"] == twitch_signature(
        SECRET,
        headers["twitch-eventsub-message-id"],
        headers["twitch-eventsub-message-timestamp"],
        bytes(event.body),
    )
