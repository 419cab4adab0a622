"""HTTP Basic (oracle: none; RFC 7617)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from django.test import Client

from tests.webhooks.providers.contract import ProviderContract
from webhooks.models import Endpoint, Event, Rejection
from webhooks.providers.basic import BasicAuthProvider

SECRET = "postmark:s3cret-pa55word"
OTHER_SECRET = "postmark:rotated-pa55word"


def basic(credentials: str | bytes) -> str:
    raw = credentials.encode() if isinstance(credentials, str) else credentials
    return "Basic " + base64.b64encode(raw).decode()


class TestBasicAuth(ProviderContract):
    provider = "basic"
    secret = SECRET
    other_secret = OTHER_SECRET

    def sample(self) -> bytes:
        return json.dumps(
            {
                "RecordType": "Delivery",
                "MessageID": str(uuid.uuid4()),
                "Recipient": "john@example.com",
                "DeliveredAt": "2024-09-12T14:05:29Z",
                "Details": "Test delivery webhook details",
                "Tag": "welcome-email",
                "ServerID": 23,
                "MessageStream": "outbound",
            }
        ).encode()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return {"Authorization": basic(secret), "User-Agent": "Postmark"}

    def malformed(self, headers):
        return {
            **headers,
            "Authorization": "Bearer " + headers["Authorization"].split()[1],
        }

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "Authorization"}

    # -- provider-specific -----------------------------------------------------------

    def test_tampered_body_is_accepted_because_basic_auth_signs_nothing(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SECRET)
        tampered = body.replace(b"Delivery", b"Bounce", 1)
        assert self.deliver(provider_client, tampered, headers).status_code == 200
        assert bytes(Event.objects.get().body) == tampered

    @pytest.mark.parametrize(
        "authorization",
        [
            "Bearer c2VjcmV0",
            "Digest username=postmark",
            "Basic not*base64",
            "Basic " + base64.b64encode(b"no-colon-here").decode(),
        ],
        ids=["bearer", "digest", "not-base64", "no-colon"],
    )
    def test_authorization_that_is_not_basic_user_password_is_malformed(
        self, provider_client: Client, endpoint: Endpoint, authorization: str
    ) -> None:
        body = self.sample()
        response = self.deliver(provider_client, body, {"Authorization": authorization})
        self.assert_rejected(response, "malformed_signature")

    def test_scheme_name_is_case_insensitive(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = {"Authorization": basic(SECRET).replace("Basic", "basic")}
        assert self.deliver(provider_client, body, headers).status_code == 200

    @pytest.mark.parametrize(
        "credentials",
        ["postmark:wrong", "other:s3cret-pa55word", "postmark:s3cret-pa55word "],
    )
    def test_wrong_user_or_password_is_a_mismatch(
        self, provider_client: Client, endpoint: Endpoint, credentials: str
    ) -> None:
        body = self.sample()
        response = self.deliver(
            provider_client, body, {"Authorization": basic(credentials)}
        )
        self.assert_rejected(response, "signature_mismatch")

    def test_password_may_contain_colons(self, provider_client: Client) -> None:
        from tests.factories import make_endpoint

        make_endpoint("contract", "basic", "user:pa:ss:word")
        body = self.sample()
        headers = {"Authorization": basic("user:pa:ss:word")}
        assert self.deliver(provider_client, body, headers).status_code == 200

    def test_authorization_is_stored_redacted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, SECRET))
        headers = Event.objects.get().headers
        assert headers["authorization"] == "[redacted]"
        assert SECRET not in json.dumps(headers)
        assert base64.b64encode(SECRET.encode()).decode() not in json.dumps(headers)

    def test_authorization_of_a_rejection_is_stored_redacted(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, {"Authorization": basic("postmark:guess")})
        assert Rejection.objects.get().headers["authorization"] == "[redacted]"

    def test_record_type_can_be_the_event_type_through_options(
        self, provider_client: Client
    ) -> None:
        from tests.factories import make_endpoint

        make_endpoint(
            "contract",
            "basic",
            SECRET,
            options={"type_field": "RecordType", "id_field": "MessageID"},
        )
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, SECRET))
        event = Event.objects.get()
        assert event.event_type == "Delivery"
        assert event.delivery_id == json.loads(body)["MessageID"]


def test_generated_secret_is_user_colon_password() -> None:
    user, colon, password = BasicAuthProvider.generate_secret().partition(":")
    assert user and colon and len(password) >= 24
