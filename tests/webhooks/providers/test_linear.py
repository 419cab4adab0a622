from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pytest
from django.test import Client

from tests.webhooks.providers.contract import TimestampedContract
from tests.webhooks.providers.sending import send_every_sample
from webhooks.exceptions import InvalidSignature
from webhooks.models import Endpoint, Event
from webhooks.providers.delivery import Delivery
from webhooks.providers.linear import LinearProvider
from webhooks.sending import samples

# Linear has no Python SDK and publishes no vector. The contract's signatures follow
# the rule its JS SDK applies (oracle for those: none published; our reading of the
# SDK), Linear-Signature = hex HMAC-SHA256 of the raw body, with freshness from the
# signed body field webhookTimestamp (milliseconds, 60 s either way); the SDK's own
# verdicts on a table of deliveries are checked at the end of this file.
SECRET = "lin_wh_6b0f3c1d9e8a7f2b5c4d3e2f1a0b9c8d"
OTHER_SECRET = "lin_wh_0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a"


def linear_signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def issue_body(timestamp_ms: int) -> bytes:
    document = json.loads(
        samples.render("linear", "Issue.create", now=time.time()).body
    )
    document["webhookTimestamp"] = timestamp_ms
    return json.dumps(document, separators=(",", ":")).encode()


class TestLinear(TimestampedContract):
    provider = "linear"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return issue_body(int(time.time() * 1000))

    # The timestamp lives in the body, so a delivery of another time is another body.
    def signed(self, secret, *, timestamp=None):
        body = self.sample() if timestamp is None else issue_body(timestamp * 1000)
        return body, self.sign(body, secret)

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return {
            "Linear-Signature": linear_signature(body, secret),
            "Linear-Delivery": str(uuid.uuid4()),
            "Linear-Event": "Issue",
        }

    def malformed(self, headers):
        return {**headers, "Linear-Signature": "sha256=abc"}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "Linear-Signature"}

    def test_non_utf8_non_json_body_with_valid_signature_is_stored_byte_exact(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # Overrides the contract: without a body there is no signed timestamp, and a
        # delivery that cannot prove its age is refused.
        body = b"\xff\xfe not json \x00 " + uuid.uuid4().bytes
        headers = self.sign(body, SECRET)
        response = self.deliver(
            provider_client, body, headers, "application/octet-stream"
        )
        self.assert_rejected(response, "malformed_signature")

    def test_timestamp_header_is_not_trusted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = issue_body(int(time.time() - 3600) * 1000)
        headers = {
            **self.sign(body, SECRET),
            "Linear-Timestamp": str(int(time.time() * 1000)),
        }
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )

    @pytest.mark.parametrize("skew", [-30, 30])
    def test_half_a_minute_either_way_is_accepted(
        self, provider_client: Client, endpoint: Endpoint, skew: int
    ) -> None:
        body, headers = self.signed(SECRET, timestamp=int(time.time()) + skew)
        assert self.deliver(provider_client, body, headers).status_code == 200

    def test_future_timestamp_beyond_a_minute_is_rejected(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(SECRET, timestamp=int(time.time()) + 600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )

    def test_delivery_header_is_the_dedup_key_and_type_entity_dot_action(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(SECRET)
        self.deliver(provider_client, body, headers)
        event = Event.objects.get()
        assert event.delivery_id == headers["Linear-Delivery"]
        assert event.event_type == "Issue.create"

    def test_without_delivery_header_the_change_itself_is_the_dedup_key(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body, headers = self.signed(SECRET)
        del headers["Linear-Delivery"]
        self.deliver(provider_client, body, headers)
        document = json.loads(body)
        assert Event.objects.get().delivery_id == ":".join(
            [
                document["webhookId"],
                "create",
                document["data"]["id"],
                document["createdAt"],
            ]
        )


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_signed_as_linear_signs(
    live_server,
) -> None:
    for event in send_every_sample(live_server.url, "linear", SECRET):
        body = bytes(event.body)
        assert event.headers["linear-signature"] == linear_signature(body, SECRET)
        stamp = json.loads(body)["webhookTimestamp"]
        assert abs(stamp / 1000 - time.time()) < 60


# oracle: Linear SDK @linear/sdk 98.0.0 (JS), LinearWebhookClient.verify, run with
# its clock set to SDK_NOW_MS on each body below; its verdicts are recorded here
# (true: it verified). The "now" body and signature are a vector it accepted.
# sdk_verdicts/linear.mjs runs the SDK on these cases again.
SDK_NOW_MS = 1765000000000
SDK_VECTOR_SIGNATURE = (
    "46d323f9c3ddc0b50e758bdd434c31bbb1b32a2ccafc1b7fa2acc47f5b007446"
)


def sdk_case_body(timestamp: float | str | None) -> bytes:
    document: dict = {
        "action": "create",
        "type": "Issue",
        "data": {
            "id": "9cfb482a-81e3-4154-b5b9-2c805e70a02d",
            "title": "Checkout fails on Safari",
        },
        "url": "https://linear.app/acme/issue/ENG-42",
        "createdAt": "2025-12-06T05:46:40.000Z",
        "organizationId": "a4f1c2d3-0000-4000-8000-000000000001",
        "webhookId": "000042e3-d123-4980-b49f-8e140eef9329",
    }
    if timestamp is not None:
        document["webhookTimestamp"] = timestamp
    return json.dumps(document, separators=(",", ":")).encode()


SDK_CASES = [
    ("now", sdk_case_body(SDK_NOW_MS), SECRET, True),
    ("59 s old", sdk_case_body(SDK_NOW_MS - 59_000), SECRET, True),
    ("60 s old", sdk_case_body(SDK_NOW_MS - 60_000), SECRET, True),
    ("61 s old", sdk_case_body(SDK_NOW_MS - 61_000), SECRET, False),
    ("60 s ahead", sdk_case_body(SDK_NOW_MS + 60_000), SECRET, True),
    ("61 s ahead", sdk_case_body(SDK_NOW_MS + 61_000), SECRET, False),
    ("fractional ms", sdk_case_body(SDK_NOW_MS + 0.5), SECRET, True),
    ("no timestamp", sdk_case_body(None), SECRET, False),
    ("timestamp as text", sdk_case_body(str(SDK_NOW_MS)), SECRET, False),
    ("other secret", sdk_case_body(SDK_NOW_MS), OTHER_SECRET, False),
]


def test_sdk_vector_signature_is_the_hmac_of_the_body() -> None:
    assert linear_signature(sdk_case_body(SDK_NOW_MS), SECRET) == SDK_VECTOR_SIGNATURE


@pytest.mark.parametrize(
    ("case", "body", "signed_with", "sdk_verified"),
    SDK_CASES,
    ids=[case[0] for case in SDK_CASES],
)
def test_verdict_is_the_sdks(case, body, signed_with, sdk_verified) -> None:
    delivery = Delivery(
        method="POST",
        headers={
            "content-type": "application/json; charset=utf-8",
            "linear-signature": linear_signature(body, signed_with),
        },
        body=body,
        source_ip="35.231.147.226",
        url="https://hooks.example.com/webhooks/linear/",
        received_at=SDK_NOW_MS / 1000,
    )
    provider = LinearProvider()
    try:
        provider.verify(
            delivery,
            [SECRET],
            tolerance=provider.default_tolerance,
            now=SDK_NOW_MS / 1000,
        )
    except InvalidSignature:
        verified = False
    else:
        verified = True
    assert verified is sdk_verified, case


def test_a_changed_body_fails_as_the_sdk_fails_it() -> None:
    body = sdk_case_body(SDK_NOW_MS).replace(b"Safari", b"safari")
    delivery = Delivery(
        method="POST",
        headers={"linear-signature": SDK_VECTOR_SIGNATURE},
        body=body,
        source_ip=None,
        url="https://hooks.example.com/webhooks/linear/",
        received_at=SDK_NOW_MS / 1000,
    )
    with pytest.raises(InvalidSignature):
        LinearProvider().verify(delivery, [SECRET], tolerance=60, now=SDK_NOW_MS / 1000)
