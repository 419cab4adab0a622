"""Clerk delivers through Svix (oracle: svix SDK 2.9.1)."""

from __future__ import annotations

import pytest
import svix.webhooks

from tests.webhooks.providers.sending import send_every_sample
from tests.webhooks.providers.svix_family import SECRET, SvixFamilyContract
from webhooks.providers.clerk import ClerkProvider
from webhooks.providers.standard import StandardWebhooksProvider

# Clerk has no verifier of its own in Python; its docs verify with the Svix library.


class TestClerk(SvixFamilyContract):
    provider = "clerk"
    sample_type = "user.created"


def test_clerk_is_standard_webhooks_under_its_own_name() -> None:
    assert issubclass(ClerkProvider, StandardWebhooksProvider)
    assert (ClerkProvider.id, ClerkProvider.name) == ("clerk", "Clerk")
    assert ClerkProvider.docs_url.startswith("https://clerk.com/")


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_as_the_svix_library_verifies(
    live_server,
) -> None:
    # oracle: svix SDK 2.9.1 (Webhook.verify)
    for event in send_every_sample(live_server.url, "clerk", SECRET):
        svix.webhooks.Webhook(SECRET).verify(bytes(event.body), event.headers)
        assert event.delivery_id == event.headers["svix-id"]
