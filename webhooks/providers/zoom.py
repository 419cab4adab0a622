from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Answer, Delivery

VALIDATION_EVENT = "endpoint.url_validation"


def signature(secret: str, timestamp: str, body: bytes) -> bytes:
    return signing.hmac_digest(
        secret.encode(), b"v0:" + timestamp.encode() + b":" + body
    )


def parse_signature(header: str) -> bytes:
    """The MAC of ``v0=<hex>``; fails with ``malformed_signature``."""
    version, _, hex_signature = header.strip().partition("=")
    if version != "v0":
        raise InvalidSignature("malformed_signature", "expected v0=<hex>")
    return signing.decode_hex(hex_signature)


def signing_secret(
    secrets: Sequence[str], timestamp: str, body: bytes, given: bytes
) -> str | None:
    """The first of ``secrets`` whose signature is ``given``; every one is computed."""
    found = None
    for secret in secrets:
        if signing.any_matches([signature(secret, timestamp, body)], [given]):
            found = found or secret
    return found


class ZoomProvider(Provider):
    id = "zoom"
    name = "Zoom"
    docs_url = "https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events"
    # Zoom's libraries check no time; five minutes bounds replays of a captured request.
    default_tolerance = 300

    # x-zm-signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>"> keyed with
    # the app's Secret Token, the timestamp in x-zm-request-timestamp. The raw body is
    # hashed, not a re-serialisation of it as in Zoom's own sample code.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        header = signing.require(delivery.header("x-zm-signature"))
        raw_timestamp = signing.require(
            delivery.header("x-zm-request-timestamp"), "timestamp"
        )
        given = parse_signature(header)
        timestamp = signing.parse_timestamp(raw_timestamp)
        if signing_secret(secrets, raw_timestamp, delivery.body, given) is None:
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
        mac = signature(secret, str(timestamp), body).hex()
        return Signed(
            {"x-zm-request-timestamp": str(timestamp), "x-zm-signature": f"v0={mac}"},
            url,
        )

    # Zoom sends no delivery id. An event is its type, its time (ms) and the
    # object it is about; a retry repeats all three.
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        event = payloads.field(payload, "event")
        event_ts = payloads.field(payload, "event_ts")
        if not event or not event_ts:
            return None
        if event == VALIDATION_EVENT:
            token = payloads.field(payload, "payload", "plainToken") or ""
            return f"{event}:{event_ts}:{token}"
        object_id = (
            payloads.field(payload, "payload", "object", "uuid")
            or payloads.field(payload, "payload", "object", "id")
            or ""
        )
        return f"{event}:{event_ts}:{object_id}"

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        return payloads.field(payload, "event") or ""

    # https://developers.zoom.us/docs/api/webhooks/#validate-your-webhook-endpoint
    # The validation request is signed like any event; the answer proves the
    # receiver holds the Secret Token: the plainToken's hex HMAC-SHA256.
    def handshake(
        self, delivery: Delivery, payload: Any, secrets: Sequence[str] = ()
    ) -> Answer | None:
        if payloads.field(payload, "event") != VALIDATION_EVENT:
            return None
        plain_token = payloads.field(payload, "payload", "plainToken")
        if plain_token is None:
            return None
        # The answer is made with the secret Zoom signed this request with, which
        # during a rotation may be the older one.
        try:
            given = parse_signature(delivery.header("x-zm-signature") or "")
        except InvalidSignature:
            return None
        timestamp = (delivery.header("x-zm-request-timestamp") or "").strip()
        secret = signing_secret(secrets, timestamp, delivery.body, given)
        if secret is None:
            return None
        encrypted = signing.hmac_digest(secret.encode(), plain_token.encode()).hex()
        return Answer.json(
            200, {"plainToken": plain_token, "encryptedToken": encrypted}
        )
