from __future__ import annotations

from webhooks.providers.standard import StandardWebhooksProvider


class ResendProvider(StandardWebhooksProvider):
    """Resend delivers through Svix: ``svix-*`` headers, a ``whsec_`` secret, ±5 min."""

    id = "resend"
    name = "Resend"
    docs_url = "https://resend.com/docs/webhooks/verify-webhooks-requests"
    header_prefix = "svix"
