from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery


class LinearProvider(Provider):
    id = "linear"
    name = "Linear"
    docs_url = "https://linear.app/developers/webhooks#securing-webhooks"
    # Linear's SDK allows 60 s either way.
    default_tolerance = 60

    # Linear-Signature: hex HMAC-SHA256 of the raw body. The freshness proof is the
    # body's webhookTimestamp (milliseconds), covered by the signature; the
    # Linear-Timestamp header is not signed and so is not read.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        given = signing.decode_hex(signing.require(delivery.header("linear-signature")))
        expected = [
            signing.hmac_digest(secret.encode(), delivery.body) for secret in secrets
        ]
        if not signing.any_matches(expected, [given]):
            raise InvalidSignature("signature_mismatch")
        if tolerance is None:
            return
        stamp = self._timestamp_ms(self.parse(delivery))
        if stamp is None:
            raise InvalidSignature(
                "malformed_signature", "no webhookTimestamp in the body"
            )
        signing.check_tolerance(stamp / 1000, tolerance, now)

    @staticmethod
    def _timestamp_ms(payload: Any) -> float | None:
        # Any finite JSON number, as Linear's SDK takes it; text is not a time.
        stamp = payload.get("webhookTimestamp") if isinstance(payload, dict) else None
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            return None
        if not math.isfinite(stamp):
            return None
        return float(stamp)

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
        signature = signing.hmac_digest(secret.encode(), body).hex()
        return Signed({"Linear-Signature": signature}, url)

    # Linear-Delivery is one delivery's id. Without it, the webhook, the action, the
    # entity and the moment it happened name the change (webhookId alone is the
    # same for every delivery of a webhook).
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        header = delivery.header("linear-delivery")
        if header:
            return header
        parts = [
            payloads.field(payload, "webhookId"),
            payloads.field(payload, "action"),
            payloads.field(payload, "data", "id"),
            payloads.field(payload, "createdAt"),
        ]
        if not all(parts):
            return None
        return ":".join(part for part in parts if part)

    # The entity and the action, such as "Issue.create".
    def event_type(self, delivery: Delivery, payload: Any) -> str:
        entity = payloads.field(payload, "type")
        action = payloads.field(payload, "action")
        return f"{entity}.{action}" if entity and action else entity or ""
