"""One delivery rendered and signed exactly as its provider sends it.

Shared by ``webhooks_send`` (which posts it over HTTP) and :mod:`webhooks.testing`
(which posts it through Django's test client), so both sign the same way.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from webhooks.providers.base import Provider
from webhooks.sending import samples
from webhooks.sending.client import Outgoing


def signed_delivery(
    provider: Provider,
    secret: str,
    *,
    url: str,
    public_url: str | None = None,
    event_type: str | None = None,
    data: bytes | None = None,
    now: float | None = None,
) -> Outgoing:
    """A fresh sample of ``event_type`` (or ``data``), signed with ``secret``, for ``url``.

    ``public_url`` is the URL the provider would have called, which URL-signing
    schemes (Twilio) sign; it defaults to ``url``. ``provider`` is the endpoint's
    provider instance, with its options. Raises :class:`samples.UnknownSampleError`
    for a type without a sample (when ``data`` is None), ``NotImplementedError``
    for a provider that cannot sign, and ``ValueError`` for a secret it cannot
    sign with (a public key).
    """
    now = time.time() if now is None else now
    sample = samples.render(
        provider.id, event_type, data=data, options=provider.options, now=now
    )
    signed = provider.sign(
        sample.body,
        secret,
        url=public_url or url,
        delivery_id=sample.delivery_id,
        timestamp=int(now),
        content_type=sample.content_type,
    )
    # A signer may add to the query (Twilio's bodySHA256): keep it on the posted URL.
    query = urlsplit(signed.url).query if signed.url else ""
    return Outgoing(
        f"{url}?{query}" if query else url,
        {**sample.headers, **signed.headers},
        sample.body if signed.body is None else signed.body,
        delivery_id=sample.delivery_id,
        event_type=sample.type,
    )
