"""GitHub. The contract signs by the rule of GitHub's docs (oracle: none beyond
the published example, which the vector tests check).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.payloads.loader import payload
from tests.webhooks.providers.contract import SignedBodyContract
from webhooks.models import Event

# The vector from GitHub's "Validating webhook deliveries" page.
VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIGNATURE = (
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)


def sign_github(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class TestGitHub(SignedBodyContract):
    provider = "github"
    secret = VECTOR_SECRET
    other_secret = "another secret"

    def sample(self) -> bytes:
        return payload("github", "push.json").replace(
            b"Update README.md", uuid.uuid4().hex.encode(), 1
        )

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return {
            "X-Hub-Signature-256": sign_github(body, secret),
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "User-Agent": "GitHub-Hookshot/044aadd",
        }

    def malformed(self, headers):
        return {**headers, "X-Hub-Signature-256": "sha1=" + "0" * 40}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}

    def test_helper_reproduces_the_official_vector(self) -> None:
        # oracle: published example in GitHub's docs (Validating webhook deliveries)
        assert sign_github(VECTOR_BODY, VECTOR_SECRET) == VECTOR_SIGNATURE

    def test_official_vector_is_accepted(
        self, provider_client: Client, endpoint
    ) -> None:
        # oracle: published example in GitHub's docs (Validating webhook deliveries)
        response = provider_client.post(
            "/webhooks/contract/",
            VECTOR_BODY,
            content_type="text/plain",
            headers={
                "X-Hub-Signature-256": VECTOR_SIGNATURE,
                "X-GitHub-Delivery": "vector",
            },
        )
        assert response.status_code == 200, response.content
        assert bytes(Event.objects.get().body) == VECTOR_BODY

    def test_delivery_header_is_the_dedup_key_and_event_header_the_type(
        self, provider_client: Client, endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, self.secret)
        self.deliver(provider_client, body, headers)
        event = Event.objects.get()
        assert event.delivery_id == headers["X-GitHub-Delivery"]
        assert event.event_type == "push"

    def test_form_encoded_hook_parses_the_payload_field(
        self, provider_client: Client, endpoint
    ) -> None:
        from urllib.parse import urlencode

        body = urlencode({"payload": self.sample().decode()}).encode()
        response = self.deliver(
            provider_client,
            body,
            self.sign(body, self.secret),
            "application/x-www-form-urlencoded",
        )
        assert response.status_code == 200, response.content
        assert Event.objects.get().payload["ref"] == "refs/heads/main"


@pytest.mark.django_db
def test_legacy_sha1_header_alone_is_missing_signature(provider_client: Client) -> None:
    make_endpoint("gh", "github", "s")
    body = b"{}"
    legacy = "sha1=" + hmac.new(b"s", body, hashlib.sha1).hexdigest()
    response = provider_client.post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers={"X-Hub-Signature": legacy},
    )
    assert response.json()["reason"] == "missing_signature"
