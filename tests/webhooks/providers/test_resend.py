"""Resend: Standard Webhooks under svix-* names (oracle: resend SDK 2.52.0)."""

from __future__ import annotations

import json

import pytest
import resend
from django.test import Client

from tests.webhooks.providers.sending import send_every_sample
from tests.webhooks.providers.svix_family import SECRET, SvixFamilyContract
from webhooks.models import Endpoint
from webhooks.providers.resend import ResendProvider
from webhooks.providers.standard import StandardWebhooksProvider


def resend_verifies(body: bytes, headers: dict[str, str], secret: str) -> object:
    """Resend's own SDK check of a delivery (it raises ValueError when it fails)."""
    return resend.Webhooks.verify(
        {
            "payload": body.decode(),
            "headers": {
                "id": headers["svix-id"],
                "timestamp": headers["svix-timestamp"],
                "signature": headers["svix-signature"],
            },
            "webhook_secret": secret,
        }
    )


class TestResend(SvixFamilyContract):
    provider = "resend"
    sample_type = "email.delivered"

    def test_resend_sdk_accepts_what_these_tests_send(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        # oracle: resend SDK 2.52.0 (Webhooks.verify)
        body, headers = self.signed(SECRET)
        verified = resend_verifies(body, headers, SECRET)
        assert verified == json.loads(body)
        assert self.deliver(provider_client, body, headers).status_code == 200

    def test_resend_sdk_refuses_the_other_secret(self) -> None:
        # oracle: resend SDK 2.52.0 (Webhooks.verify)
        body, headers = self.signed(SECRET)
        with pytest.raises(ValueError):
            resend_verifies(body, headers, self.other_secret)


def test_resend_is_standard_webhooks_under_its_own_name() -> None:
    assert issubclass(ResendProvider, StandardWebhooksProvider)
    assert (ResendProvider.id, ResendProvider.name) == ("resend", "Resend")
    assert ResendProvider.docs_url.startswith("https://resend.com/")


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_as_the_resend_sdk_verifies(
    live_server,
) -> None:
    # oracle: resend SDK 2.52.0 (Webhooks.verify)
    for event in send_every_sample(live_server.url, "resend", SECRET):
        resend_verifies(bytes(event.body), event.headers, SECRET)
        assert event.delivery_id == event.headers["svix-id"]
