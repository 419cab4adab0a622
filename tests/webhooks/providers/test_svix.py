"""Svix: Standard Webhooks under svix-* names (oracle: svix SDK 2.9.1)."""

from __future__ import annotations

import pytest
import svix.webhooks

from tests.webhooks.providers.sending import send_every_sample
from tests.webhooks.providers.svix_family import SECRET, SvixFamilyContract
from webhooks.providers.standard import StandardWebhooksProvider
from webhooks.providers.svix import SvixProvider


class TestSvix(SvixFamilyContract):
    provider = "svix"
    sample_type = "endpoint.created"


def test_svix_is_standard_webhooks_under_its_own_name() -> None:
    assert issubclass(SvixProvider, StandardWebhooksProvider)
    assert (SvixProvider.id, SvixProvider.name) == ("svix", "Svix")
    assert SvixProvider.docs_url.startswith("https://docs.svix.com/")


@pytest.mark.django_db(transaction=True)
def test_webhooks_send_posts_every_sample_as_the_svix_library_verifies(
    live_server,
) -> None:
    # oracle: svix SDK 2.9.1 (Webhook.verify)
    for event in send_every_sample(live_server.url, "svix", SECRET):
        svix.webhooks.Webhook(SECRET).verify(bytes(event.body), event.headers)
        assert event.delivery_id == event.headers["svix-id"]
