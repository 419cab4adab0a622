from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Answer, Delivery

PREFIX = "twitch-eventsub-"
VERIFICATION = "webhook_callback_verification"
REVOCATION = "revocation"
#: RFC 3339 as Twitch writes it: UTC, with up to nine digits of seconds' fraction.
TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})"
)


def parse_timestamp(value: str) -> float:
    """Unix seconds of an RFC 3339 time, failing with ``malformed_signature``."""
    match = TIMESTAMP.fullmatch(value.strip())
    if match is None:
        raise InvalidSignature("malformed_signature", "timestamp is not RFC 3339")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        raise InvalidSignature("malformed_signature", "timestamp is no date") from None
    offset = 0
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return moment.timestamp() - offset + float(f"0.{fraction or 0}")


def format_timestamp(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TwitchProvider(Provider):
    id = "twitch"
    name = "Twitch EventSub"
    docs_url = "https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message"
    # Twitch: reject messages older than ten minutes.
    default_tolerance = 600

    @classmethod
    def generate_secret(cls) -> str:
        # The subscription's secret: 10 to 100 ASCII characters.
        return secrets.token_urlsafe(32)

    # Twitch-Eventsub-Message-Signature: sha256=<hex HMAC-SHA256 of the message id,
    # the timestamp and the raw body, concatenated>, keyed with the subscription's
    # secret. The timestamp (RFC 3339) is signed and must be within the tolerance.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        header = signing.require(delivery.header(PREFIX + "message-signature"))
        message_id = signing.require(
            delivery.header(PREFIX + "message-id"), "message id"
        )
        raw_timestamp = signing.require(
            delivery.header(PREFIX + "message-timestamp"), "timestamp"
        )
        scheme, _, hex_signature = header.partition("=")
        if scheme != "sha256":
            raise InvalidSignature("malformed_signature", "expected sha256=<hex>")
        given = signing.decode_hex(hex_signature)
        timestamp = parse_timestamp(raw_timestamp)
        signed = message_id.encode() + raw_timestamp.encode() + delivery.body
        expected = [signing.hmac_digest(secret.encode(), signed) for secret in secrets]
        if not signing.any_matches(expected, [given]):
            raise InvalidSignature("signature_mismatch")
        signing.check_tolerance(timestamp, tolerance, now)

    # Signs a notification; the subscription type and version are in the sample's headers.
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
        raw_timestamp = format_timestamp(timestamp)
        signed = delivery_id.encode() + raw_timestamp.encode() + body
        mac = signing.hmac_digest(secret.encode(), signed).hex()
        return Signed(
            {
                "Twitch-Eventsub-Message-Id": delivery_id,
                "Twitch-Eventsub-Message-Timestamp": raw_timestamp,
                "Twitch-Eventsub-Message-Signature": f"sha256={mac}",
            },
            url,
        )

    # The message id is kept on Twitch's retries: it is the dedup key.
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return delivery.header(PREFIX + "message-id")

    # Notifications are typed by their subscription ("channel.follow"); the
    # verification and revocation messages by their message type, so a handler can
    # register for "revocation" (the payload names the subscription and the reason).
    def event_type(self, delivery: Delivery, payload: Any) -> str:
        message_type = delivery.header(PREFIX + "message-type") or ""
        if message_type in (VERIFICATION, REVOCATION):
            return message_type
        return (
            delivery.header(PREFIX + "subscription-type")
            or payloads.field(payload, "subscription", "type")
            or message_type
        )

    # https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#responding-to-a-challenge-request
    # The raw challenge as a text/plain body. A revocation is stored and answered
    # like a notification.
    def handshake(
        self, delivery: Delivery, payload: Any, secrets: Sequence[str] = ()
    ) -> Answer | None:
        if delivery.header(PREFIX + "message-type") != VERIFICATION:
            return None
        challenge = payloads.field(payload, "challenge")
        if challenge is None:
            return None
        return Answer(200, challenge.encode(), "text/plain")
