from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery


class StripeProvider(Provider):
    id = "stripe"
    name = "Stripe"
    docs_url = "https://docs.stripe.com/webhooks#verify-manually"
    default_tolerance = 300

    @classmethod
    def generate_secret(cls) -> str:
        return "whsec_" + secrets.token_hex(24)

    # Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>][,v0=<hex>]. Only v1 counts: a
    # match under any other scheme is ignored, never accepted. The whsec_ secret is
    # the HMAC key as written (unlike Standard Webhooks, it is not base64-decoded),
    # and only timestamps older than the tolerance are refused, as the SDK does.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        items = signing.split_items(
            signing.require(delivery.header("stripe-signature"))
        )
        timestamps = [value for key, value in items if key == "t"]
        signatures = [value for key, value in items if key == "v1"]
        if len(timestamps) != 1 or not signatures:
            raise InvalidSignature("malformed_signature", "needs one t= and a v1= item")
        timestamp = signing.parse_timestamp(timestamps[0])
        given = [signing.decode_hex(signature) for signature in signatures]
        signed = timestamps[0].encode() + b"." + delivery.body
        expected = [signing.hmac_digest(secret.encode(), signed) for secret in secrets]
        if not signing.any_matches(expected, given):
            raise InvalidSignature("signature_mismatch")
        signing.check_tolerance(timestamp, tolerance, now, reject_future=False)

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
        signed = str(timestamp).encode() + b"." + body
        signature = signing.hmac_digest(secret.encode(), signed).hex()
        return Signed({"Stripe-Signature": f"t={timestamp},v1={signature}"}, url)

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return payloads.field(payload, "id")
