from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery


class PaddleProvider(Provider):
    id = "paddle"
    name = "Paddle Billing"
    docs_url = "https://developer.paddle.com/webhooks/signature-verification"
    # Paddle's SDK allows 5 s either way; Paddle expects an answer within 5 s anyway.
    default_tolerance = 5

    @classmethod
    def generate_secret(cls) -> str:
        return "pdl_ntfset_" + secrets.token_hex(13) + "_" + secrets.token_urlsafe(24)

    # Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of "<ts>:<raw body>">, with one
    # h1 per secret while a secret is being rotated. The pdl_ntfset_ secret is the key
    # as written. Keys other than ts and h1 are skipped, never matched against.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        items = signing.split_items(
            signing.require(delivery.header("paddle-signature")), separator=";"
        )
        timestamps = [value for key, value in items if key == "ts"]
        signatures = [value for key, value in items if key == "h1"]
        if len(timestamps) != 1 or not signatures:
            raise InvalidSignature(
                "malformed_signature", "needs one ts= and a h1= item"
            )
        timestamp = signing.parse_timestamp(timestamps[0])
        given = [signing.decode_hex(signature) for signature in signatures]
        signed = timestamps[0].encode() + b":" + delivery.body
        expected = [signing.hmac_digest(secret.encode(), signed) for secret in secrets]
        if not signing.any_matches(expected, given):
            raise InvalidSignature("signature_mismatch")
        signing.check_tolerance(timestamp, tolerance, now)

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
        signed = str(timestamp).encode() + b":" + body
        signature = signing.hmac_digest(secret.encode(), signed).hex()
        return Signed({"Paddle-Signature": f"ts={timestamp};h1={signature}"}, url)

    # One event reaches each destination as its own notification (notification_id);
    # event_id is the same in all of them and across retries.
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return payloads.field(payload, "event_id")

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        return payloads.field(payload, "event_type") or ""
