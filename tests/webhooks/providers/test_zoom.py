from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.providers.contract import TimestampedContract
from tests.webhooks.providers.live_send import send_and_check
from webhooks.exceptions import InvalidSignature
from webhooks.models import Endpoint, EndpointSecret, Event
from webhooks.providers.delivery import Delivery
from webhooks.providers.zoom import ZoomProvider

SECRET = "Oq8JfDq2RlW0Xb1n5vQm7A"
OTHER_SECRET = "c3VwZXJzZWNyZXR0b2tlbg"


# The contract's signatures are made as Zoom documents them (oracle: none published;
# our reading of the docs); Zoom's own SDK's verdicts are checked at the end.


def zoom_signature(secret: str, timestamp: int, body: bytes) -> str:
    """As Zoom documents it: v0= hex HMAC-SHA256 of "v0:{timestamp}:{body}"."""
    message = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def validation(plain_token: str) -> bytes:
    return json.dumps(
        {
            "payload": {"plainToken": plain_token},
            "event_ts": int(time.time() * 1000),
            "event": "endpoint.url_validation",
        },
        separators=(",", ":"),
    ).encode()


def zoom_delivery(body: bytes, headers: dict[str, str]) -> Delivery:
    return Delivery(
        method="POST",
        headers={
            "content-type": "application/json",
            **{k.lower(): v for k, v in headers.items()},
        },
        body=body,
        source_ip="127.0.0.1",
        url="https://hooks.example.com/webhooks/zoom/",
        received_at=time.time(),
    )


class TestZoom(TimestampedContract):
    provider = "zoom"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return json.dumps(
            {
                "event": "meeting.started",
                "event_ts": int(time.time() * 1000),
                "payload": {
                    "account_id": "AAAAAABBBB_CCCCdddEE",
                    "object": {
                        "id": str(uuid.uuid4().int % 10**11),
                        "uuid": uuid.uuid4().hex + "==",
                        "topic": "Weekly planning",
                    },
                },
            },
            separators=(",", ":"),
        ).encode()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        timestamp = int(time.time()) if timestamp is None else timestamp
        return {
            "x-zm-request-timestamp": str(timestamp),
            "x-zm-signature": zoom_signature(secret, timestamp, body),
            "User-Agent": "Zoom Marketplace/1.0a",
        }

    def malformed(self, headers):
        return {**headers, "x-zm-signature": "v1=" + "0" * 64}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "x-zm-signature"}

    # -- the endpoint.url_validation handshake ------------------------------------------

    def test_url_validation_answers_plain_and_encrypted_token(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = validation("qgg8vlvZRS6UYooatFL8Aw")
        response = self.deliver(provider_client, body, self.sign(body, SECRET))
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "application/json"
        assert json.loads(response.content) == {
            "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
            "encryptedToken": hmac.new(
                SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256
            ).hexdigest(),
        }
        event = Event.objects.get()
        assert event.status == Event.Status.SKIPPED
        assert event.event_type == "endpoint.url_validation"

    def test_url_validation_during_rotation_answers_with_the_secret_that_signed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        endpoint.rotate_secret(OTHER_SECRET, timedelta(hours=1))
        for secret in (SECRET, OTHER_SECRET):
            token = uuid.uuid4().hex
            body = validation(token)
            response = self.deliver(provider_client, body, self.sign(body, secret))
            expected = hmac.new(secret.encode(), token.encode(), hashlib.sha256)
            assert response.json()["encryptedToken"] == expected.hexdigest()

    def test_url_validation_answered_after_a_rotation_seen_only_in_the_database(
        self, provider_client: Client, endpoint: Endpoint, settings
    ) -> None:
        # This process keeps the endpoint without the new secret (another process
        # added it: bulk_create sends no signal); the delivery signed with it is
        # verified again with fresh secrets, and answered with the new one.
        settings.WEBHOOKS_ENDPOINT_CACHE_SECONDS = 3600
        body = self.sample()
        response = self.deliver(provider_client, body, self.sign(body, SECRET))
        assert response.status_code == 200, response.content
        EndpointSecret.objects.bulk_create(
            [EndpointSecret(endpoint=endpoint, value=OTHER_SECRET)]
        )
        token = uuid.uuid4().hex
        body = validation(token)
        response = self.deliver(provider_client, body, self.sign(body, OTHER_SECRET))
        expected = hmac.new(OTHER_SECRET.encode(), token.encode(), hashlib.sha256)
        assert response.json()["encryptedToken"] == expected.hexdigest()

    def test_url_validation_with_a_bad_signature_gets_no_token(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = validation("qgg8vlvZRS6UYooatFL8Aw")
        response = self.deliver(provider_client, body, self.sign(body, OTHER_SECRET))
        self.assert_rejected(response, "signature_mismatch")
        assert b"encryptedToken" not in response.content

    def test_repeated_validation_every_72_hours_is_answered_each_time(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        for token in ("first-token", "second-token"):
            body = validation(token)
            response = self.deliver(provider_client, body, self.sign(body, SECRET))
            assert response.json()["plainToken"] == token
        assert Event.objects.count() == 2

    def test_one_provider_instance_keeps_nothing_between_deliveries(self) -> None:
        # Verifying one delivery must not decide the answer to another: the answer
        # is computed from the validation request and the secrets it is given.
        provider = ZoomProvider()
        now = time.time()
        first, second = validation("first"), validation("second")
        signed_first = zoom_delivery(first, self.sign(first, SECRET))
        signed_second = zoom_delivery(second, self.sign(second, OTHER_SECRET))
        secrets = [SECRET, OTHER_SECRET]
        provider.verify(signed_first, secrets, tolerance=300, now=now)
        provider.verify(signed_second, secrets, tolerance=300, now=now)
        answer = provider.handshake(signed_first, provider.parse(signed_first), secrets)
        assert answer is not None
        expected = hmac.new(SECRET.encode(), b"first", hashlib.sha256).hexdigest()
        assert json.loads(answer.body)["encryptedToken"] == expected
        # Without the secret that signed it, no answer at all.
        assert (
            provider.handshake(
                signed_first, provider.parse(signed_first), [OTHER_SECRET]
            )
            is None
        )

    # -- provider-specific -----------------------------------------------------------

    def test_event_is_typed_and_identified_by_type_time_and_object(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, SECRET))
        event = Event.objects.get()
        data = json.loads(body)
        assert event.event_type == "meeting.started"
        assert event.delivery_id == (
            f"meeting.started:{data['event_ts']}:{data['payload']['object']['uuid']}"
        )

    def test_retry_signed_later_is_a_duplicate(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        first = self.deliver(provider_client, body, self.sign(body, SECRET))
        retry = self.sign(body, SECRET, timestamp=int(time.time()) + 5)
        second = self.deliver(provider_client, body, retry)
        assert second.json() == {"status": "duplicate", "id": first.json()["id"]}

    def test_future_timestamp_beyond_tolerance_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET, timestamp=int(time.time()) + 3600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )

    def test_missing_timestamp_is_missing_signature(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        del headers["x-zm-request-timestamp"]
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "missing_signature"
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("event_type", ["meeting.started", "meeting.ended"])
def test_webhooks_send_delivers_a_sample_signed_as_zoom_documents(
    live_server, event_type
) -> None:
    make_endpoint("send-zoom", "zoom", SECRET)
    event = send_and_check(live_server.url, "send-zoom", event_type)
    assert event.event_type == event_type
    timestamp = int(event.headers["x-zm-request-timestamp"])
    assert event.headers["x-zm-signature"] == zoom_signature(
        SECRET, timestamp, bytes(event.body)
    )


# oracle: Zoom SDK @zoom/rivet 0.4.0 (JS), its AwsLambdaReceiver (meetings) given
# each body below with x-zm-request-timestamp SDK_TIMESTAMP; its answers are recorded
# here: 200 for a verified event, 400 otherwise, and for the URL validation the
# encryptedToken it computed. Rivet applies no time window, so ours runs at that time.
# sdk_verdicts/zoom.mjs runs the SDK on these cases again.
SDK_TIMESTAMP = "1765000000"
SDK_STARTED = (
    b'{"event":"meeting.started","event_ts":1765000000123,"payload":{"account_id":'
    b'"AAAAAABBBB_CCCCdddEE","object":{"id":"85263974512","uuid":'
    b'"Xq8Fs2bCTmCqEuH8W2JwOg==","host_id":"z8yBXlP1TmagS1yGj3eDrw","topic":'
    b'"Weekly planning","type":2,"start_time":"2025-12-06T05:46:40Z","timezone":'
    b'"Europe/Paris"}}}'
)
SDK_STARTED_SIGNATURE = (
    "v0=6e2d67df1f42b6ad7af5c8abcbf4f0711a38e546c19ab3bfc0e3ccb9bf81e773"
)
SDK_VALIDATION = (
    b'{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1765000000456,'
    b'"event":"endpoint.url_validation"}'
)
SDK_VALIDATION_SIGNATURE = (
    "v0=87232f5242cede5f2318716eaa0a309901e8fba0358a8e051222d8a2eba2237b"
)
SDK_ENCRYPTED_TOKEN = "1bedcd1d0da575fe0d0e278bdb2e3859a1d70a64e7552c71467f179909c1a505"


def sdk_delivery(body: bytes, signature: str, timestamp: str = SDK_TIMESTAMP):
    return zoom_delivery(
        body, {"x-zm-signature": signature, "x-zm-request-timestamp": timestamp}
    )


@pytest.mark.parametrize(
    ("case", "delivery", "sdk_status"),
    [
        ("verified", sdk_delivery(SDK_STARTED, SDK_STARTED_SIGNATURE), 200),
        (
            "signed with another secret",
            sdk_delivery(
                SDK_STARTED, zoom_signature(OTHER_SECRET, 1765000000, SDK_STARTED)
            ),
            400,
        ),
        (
            "body changed",
            sdk_delivery(
                SDK_STARTED.replace(b"Weekly", b"weekly"), SDK_STARTED_SIGNATURE
            ),
            400,
        ),
        (
            "another timestamp",
            sdk_delivery(SDK_STARTED, SDK_STARTED_SIGNATURE, "1765000001"),
            400,
        ),
    ],
)
def test_verdict_is_the_sdks(case, delivery, sdk_status) -> None:
    try:
        ZoomProvider().verify(
            delivery,
            [SECRET],
            tolerance=300,
            now=float(delivery.header("x-zm-request-timestamp")),
        )
    except InvalidSignature:
        status = 400
    else:
        status = 200
    assert status == sdk_status, case


def test_url_validation_answer_is_the_sdks() -> None:
    provider = ZoomProvider()
    delivery = sdk_delivery(SDK_VALIDATION, SDK_VALIDATION_SIGNATURE)
    provider.verify(delivery, [SECRET], tolerance=300, now=float(SDK_TIMESTAMP))
    answer = provider.handshake(delivery, provider.parse(delivery), [SECRET])
    assert answer is not None and answer.status == 200
    assert json.loads(answer.body) == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": SDK_ENCRYPTED_TOKEN,
    }
