"""GitLab. GitLab publishes no vector and ships no Python verifier (oracle: none published; our reading of the docs);
its signing tokens are signed with the Standard Webhooks library (oracle:
standardwebhooks SDK 1.1.0).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
import standardwebhooks.webhooks
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.providers.contract import (
    SLUG,
    ProviderContract,
    TimestampedContract,
)
from tests.webhooks.providers.sending import send_every_sample
from webhooks.models import Endpoint, Event, Rejection
from webhooks.providers.standard import secret_key
from webhooks.sending import samples

# GitLab publishes no vector and no Python verifier. The classic scheme sends the
# secret token itself; the signing token sends Standard Webhooks headers, signed
# here with the standardwebhooks library (for whsec_ tokens) or over the token's
# own bytes, since GitLab has not documented which of the two the key is.
TOKEN = "glwt-3f9a1c7e5b2d4f6a8c0e"
OTHER_TOKEN = "glwt-0e8c6a4f2d0b9e7c5a3f"
SIGNING_TOKEN = (
    "whsec_" + base64.b64encode(b"gitlab-signing-token-32-bytes-ok").decode()
)
OTHER_SIGNING_TOKEN = (
    "whsec_" + base64.b64encode(b"another-gitlab-signing-token-32b").decode()
)


def push_body() -> bytes:
    return samples.render("gitlab", "Push Hook", now=time.time()).body


def gitlab_headers(idempotency_key: str) -> dict[str, str]:
    return {
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Event-UUID": idempotency_key,
        "Idempotency-Key": idempotency_key,
        "X-Gitlab-Instance": "https://gitlab.com",
        "User-Agent": "GitLab/18.6.0-pre",
    }


def raw_key_signature(msg_id: str, timestamp: int, body: bytes, key: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class TestGitLabToken(ProviderContract):
    """The classic secret token: it signs nothing, so no tamper or staleness test applies."""

    provider = "gitlab"
    secret = TOKEN
    other_secret = OTHER_TOKEN

    def sample(self) -> bytes:
        return push_body()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return {**gitlab_headers(str(uuid.uuid4())), "X-Gitlab-Token": secret}

    # A token has no format of its own; what is malformed is a signature header sent
    # next to a token that does not match.
    def malformed(self, headers):
        return {
            **headers,
            "X-Gitlab-Token": "not-the-token",
            "webhook-id": headers["Idempotency-Key"],
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1 no-comma",
        }

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "X-Gitlab-Token"}

    def test_token_proves_nothing_about_the_body(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # The documented weakness of the classic scheme, stated as a test.
        headers = self.sign(b"", TOKEN)
        response = self.deliver(provider_client, b'{"object_kind":"forged"}', headers)
        assert response.status_code == 200, response.content

    def test_allowed_source_networks_can_be_required(
        self, provider_client: Client
    ) -> None:
        make_endpoint(SLUG, "gitlab", TOKEN, allowed_networks=["34.74.90.64/28"])
        body = self.sample()
        headers = self.sign(body, TOKEN)
        refused = self.deliver(provider_client, body, headers)
        assert refused.status_code == 403
        assert refused.json() == {"error": "forbidden", "reason": "ip_not_allowed"}
        allowed = provider_client.post(
            f"/webhooks/{SLUG}/",
            body,
            content_type="application/json",
            headers=headers,
            REMOTE_ADDR="34.74.90.65",
        )
        assert allowed.status_code == 200, allowed.content

    def test_the_token_is_stored_redacted_in_events_and_rejections(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        self.deliver(provider_client, body, self.sign(body, TOKEN))
        self.deliver(provider_client, body, self.sign(body, OTHER_TOKEN))
        assert Event.objects.get().headers["x-gitlab-token"] == "[redacted]"
        assert Rejection.objects.get().headers["x-gitlab-token"] == "[redacted]"
        assert TOKEN not in json.dumps(Event.objects.get().headers)

    def test_idempotency_key_is_the_dedup_key_and_event_header_the_type(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, TOKEN)
        self.deliver(provider_client, body, headers)
        event = Event.objects.get()
        assert event.delivery_id == headers["Idempotency-Key"]
        assert event.event_type == "Push Hook"

    def test_older_gitlab_without_idempotency_key_dedups_on_the_event_uuid(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, TOKEN)
        del headers["Idempotency-Key"], headers["X-Gitlab-Event"]
        self.deliver(provider_client, body, headers)
        event = Event.objects.get()
        assert event.delivery_id == headers["X-Gitlab-Event-UUID"]
        assert event.event_type == "push"


class TestGitLabSigningToken(TimestampedContract):
    """The signing token: Standard Webhooks headers over id, timestamp and body."""

    provider = "gitlab"
    secret = SIGNING_TOKEN
    other_secret = OTHER_SIGNING_TOKEN

    def sample(self) -> bytes:
        return push_body()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        timestamp = int(time.time()) if timestamp is None else timestamp
        key = str(uuid.uuid4())
        try:
            text = body.decode()
        except UnicodeDecodeError:
            # The library signs text only; the same MAC over the raw bytes.
            decoded = secret_key(secret)
            assert decoded is not None
            signature = raw_key_signature(key, timestamp, body, decoded)
        else:
            signature = standardwebhooks.webhooks.Webhook(secret).sign(
                key, datetime.fromtimestamp(timestamp, tz=UTC), text
            )
        return {
            **gitlab_headers(key),
            "webhook-id": key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }

    def malformed(self, headers):
        return {**headers, "webhook-signature": "v1;abc"}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "webhook-signature"}

    def test_signing_token_used_as_written_is_accepted_too(
        self, provider_client: Client
    ) -> None:
        raw_token = "glsig-Yk3mP9qL2vX7tB5n"
        make_endpoint(SLUG, "gitlab", raw_token)
        body = self.sample()
        key, now = str(uuid.uuid4()), int(time.time())
        headers = {
            **gitlab_headers(key),
            "webhook-id": key,
            "webhook-timestamp": str(now),
            "webhook-signature": raw_key_signature(key, now, body, raw_token.encode()),
        }
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content

    def test_a_wrong_classic_token_does_not_spoil_a_valid_signature(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = {**self.sign(body, SIGNING_TOKEN), "X-Gitlab-Token": "other"}
        response = self.deliver(provider_client, body, headers)
        assert response.status_code == 200, response.content

    def test_webhook_id_equals_the_idempotency_key_and_is_the_dedup_key(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = self.sign(body, SIGNING_TOKEN)
        first = self.deliver(provider_client, body, headers)
        assert Event.objects.get().delivery_id == headers["webhook-id"]
        # GitLab re-signs a retry with a new timestamp and keeps its ids.
        retry_at = int(time.time()) + 1
        decoded = secret_key(SIGNING_TOKEN)
        assert decoded is not None
        retry = {
            **headers,
            "webhook-timestamp": str(retry_at),
            "webhook-signature": raw_key_signature(
                headers["webhook-id"], retry_at, body, decoded
            ),
        }
        second = self.deliver(provider_client, body, retry)
        assert second.json() == {"status": "duplicate", "id": first.json()["id"]}


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_with_the_classic_token(live_server) -> None:
    for event in send_every_sample(live_server.url, "gitlab", TOKEN):
        assert event.headers["x-gitlab-token"] == "[redacted]"
        assert event.delivery_id == event.headers["idempotency-key"]
        assert json.loads(bytes(event.body))["object_kind"] in ("push", "merge_request")
