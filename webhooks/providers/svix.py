from __future__ import annotations

from webhooks.providers.standard import StandardWebhooksProvider


class SvixProvider(StandardWebhooksProvider):
    """Svix: the Standard Webhooks scheme under ``svix-*`` header names."""

    id = "svix"
    name = "Svix"
    docs_url = "https://docs.svix.com/receiving/verifying-payloads/how-manual"
    header_prefix = "svix"
