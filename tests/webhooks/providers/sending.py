"""Every shipped sample of a provider through ``webhooks_send``, for its own tests.

Each sample is posted by the command exactly as the provider would post it, to
the live test server over the test database (see ``live_send``); the caller then
checks each stored delivery with the provider's SDK or documented algorithm.
"""

from __future__ import annotations

from typing import Any

from tests.factories import make_endpoint
from tests.webhooks.providers.live_send import send_and_check
from webhooks.models import Event
from webhooks.sending import samples

SLUG = "sent"


def send_every_sample(
    server_url: str, provider: str, secret: str, **fields: Any
) -> list[Event]:
    """Send each sample of ``provider`` once; each is stored as its own, typed event."""
    make_endpoint(SLUG, provider, secret, **fields)
    events = []
    for event_type in samples.types(provider):
        event = send_and_check(server_url, SLUG, event_type)
        assert event.provider == provider
        assert event.event_type == samples.read_as(provider, event_type)
        events.append(event)
    assert len({event.delivery_id for event in events}) == len(events)
    return events


def sent_url(server_url: str) -> str:
    """The URL the command posted to, which URL-signing schemes signed."""
    return f"{server_url}/webhooks/{SLUG}/"
