from __future__ import annotations

from webhooks.providers.standard import StandardWebhooksProvider


class ClerkProvider(StandardWebhooksProvider):
    """Clerk delivers through Svix: ``svix-*`` headers, a ``whsec_`` secret, ±5 min."""

    id = "clerk"
    name = "Clerk"
    docs_url = "https://clerk.com/docs/webhooks/sync-data"
    header_prefix = "svix"
