from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from webhooks.exceptions import InvalidSignature
from webhooks.providers import signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery


def _header(delivery: Delivery, name: str) -> str | None:
    # Classic webhooks send X-Shopify-<Name>; the newer "events" deliveries send the
    # same values unprefixed and lower-case (shopify-<name>).
    return delivery.header(f"x-shopify-{name}") or delivery.header(f"shopify-{name}")


class ShopifyProvider(Provider):
    id = "shopify"
    name = "Shopify"
    docs_url = "https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook"

    # Base64 HMAC-SHA256 of the raw body with the app's client secret. Webhooks a
    # merchant creates in the store admin are signed with another key and fail here.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        given = signing.decode_base64(signing.require(_header(delivery, "hmac-sha256")))
        expected = [
            signing.hmac_digest(secret.encode(), delivery.body) for secret in secrets
        ]
        if not signing.any_matches(expected, [given]):
            raise InvalidSignature("signature_mismatch")

    def sign(
        self,
        body: bytes,
        secret: str,
        *,
        url: str,
        delivery_id: str,
        timestamp: int,
        content_type: str,
    ) -> Signed:
        digest = signing.hmac_digest(secret.encode(), body)
        return Signed({"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}, url)

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return _header(delivery, "event-id") or _header(delivery, "webhook-id")

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        return _header(delivery, "topic") or ""
