from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Answer, Delivery


class SlackProvider(Provider):
    id = "slack"
    name = "Slack"
    docs_url = "https://api.slack.com/authentication/verifying-requests-from-slack"
    default_tolerance = 300

    # X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>">, with the
    # timestamp in X-Slack-Request-Timestamp; old and future timestamps are refused.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        header = signing.require(delivery.header("x-slack-signature"))
        raw_timestamp = signing.require(
            delivery.header("x-slack-request-timestamp"), "timestamp"
        )
        version, _, signature = header.partition("=")
        if version != "v0":
            raise InvalidSignature("malformed_signature", "expected v0=<hex>")
        timestamp = signing.parse_timestamp(raw_timestamp)
        given = signing.decode_hex(signature)
        signed = b"v0:" + raw_timestamp.encode() + b":" + delivery.body
        expected = [signing.hmac_digest(secret.encode(), signed) for secret in secrets]
        if not signing.any_matches(expected, [given]):
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
        signed = f"v0:{timestamp}:".encode() + body
        signature = signing.hmac_digest(secret.encode(), signed).hex()
        return Signed(
            {
                "X-Slack-Request-Timestamp": str(timestamp),
                "X-Slack-Signature": f"v0={signature}",
            },
            url,
        )

    def parse(self, delivery: Delivery) -> Any:
        # Interactivity posts a form whose single "payload" field holds the JSON.
        payload = super().parse(delivery)
        if isinstance(payload, dict) and set(payload) == {"payload"}:
            embedded = payload["payload"]
            return (
                payloads.parse_json(embedded.encode())
                if isinstance(embedded, str)
                else None
            )
        return payload

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        # Events API: event_id, identical on Slack's retries. Slash commands and
        # interactions carry a trigger_id unique to the user's action.
        return payloads.field(payload, "event_id") or payloads.field(
            payload, "trigger_id"
        )

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        if payloads.field(payload, "type") == "event_callback":
            return payloads.field(payload, "event", "type") or "event_callback"
        return (
            payloads.field(payload, "type") or payloads.field(payload, "command") or ""
        )

    # https://api.slack.com/events/url_verification
    def handshake(
        self, delivery: Delivery, payload: Any, secrets: Sequence[str] = ()
    ) -> Answer | None:
        if payloads.field(payload, "type") != "url_verification":
            return None
        return Answer.json(
            200, {"challenge": payloads.field(payload, "challenge") or ""}
        )
