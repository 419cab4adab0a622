from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from webhooks.exceptions import InvalidSignature, ProviderConfigError
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Answer, Delivery

SIGNATURE_HEADER = "X-Signature-Ed25519"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
KEY_BYTES = 32
SIGNATURE_BYTES = 64

#: Interaction types by number (Discord's "Interaction Type" table).
INTERACTION_TYPES = {
    1: "PING",
    2: "APPLICATION_COMMAND",
    3: "MESSAGE_COMPONENT",
    4: "APPLICATION_COMMAND_AUTOCOMPLETE",
    5: "MODAL_SUBMIT",
}


def load_key(secret: str) -> ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey:
    """An Ed25519 key from an endpoint secret, in hex.

    64 hex digits are the application's public key as the Developer Portal
    shows it. 128 are a signing key in libsodium's layout (seed, then public
    key): it lets ``webhooks_send`` sign test deliveries.
    """
    try:
        raw = bytes.fromhex(secret.strip())
    except ValueError:
        raise ProviderConfigError("a Discord public key is hex") from None
    if len(raw) == KEY_BYTES:
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    if len(raw) == 2 * KEY_BYTES:
        return ed25519.Ed25519PrivateKey.from_private_bytes(raw[:KEY_BYTES])
    raise ProviderConfigError("a Discord public key is 32 bytes (64 hex digits)")


def public_key(secret: str) -> ed25519.Ed25519PublicKey:
    key = load_key(secret)
    return key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key


def is_webhook_event(payload: Any) -> bool:
    # Webhook Events carry an "event" (or, for their PING, type 0); interactions
    # always carry a token and a type from 1 up.
    return isinstance(payload, dict) and (
        "event" in payload or (payload.get("type") == 0 and "token" not in payload)
    )


class DiscordProvider(Provider):
    """Discord interactions and Webhook Events, signed with Ed25519.

    The endpoint's secret is the application's public key (hex). A bad
    signature gets a 401: Discord probes endpoints with forged signatures and
    removes those that accept them.
    """

    id = "discord"
    name = "Discord"
    docs_url = "https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint-validating-security-request-headers"

    @classmethod
    def generate_secret(cls) -> str:
        key = ed25519.Ed25519PrivateKey.generate()
        seed = key.private_bytes_raw()
        return (seed + key.public_key().public_bytes_raw()).hex()

    def check_secret(self, secret: str) -> None:
        load_key(secret)

    # X-Signature-Ed25519: hex Ed25519 signature of the X-Signature-Timestamp value
    # followed by the raw body. Discord defines no freshness window; an endpoint's
    # tolerance is applied when set.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        given = signing.decode_hex(signing.require(delivery.header(SIGNATURE_HEADER)))
        if len(given) != SIGNATURE_BYTES:
            raise InvalidSignature("malformed_signature", "not a 64-byte signature")
        raw_timestamp = signing.require(delivery.header(TIMESTAMP_HEADER), "timestamp")
        timestamp = signing.parse_timestamp(raw_timestamp)
        signed = raw_timestamp.encode() + delivery.body
        matched = False
        for key in [public_key(secret) for secret in secrets]:
            try:
                key.verify(given, signed)
            except BadSignature:
                continue
            matched = True
        if not matched:
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
        try:
            key = load_key(secret)
        except ProviderConfigError as error:
            raise ValueError(str(error)) from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError(
                "Discord signs with its private key; the endpoint holds only the "
                "application's public key (give it a signing key to send test deliveries)"
            )
        signature = key.sign(str(timestamp).encode() + body)
        return Signed(
            {SIGNATURE_HEADER: signature.hex(), TIMESTAMP_HEADER: str(timestamp)}, url
        )

    # Interactions have an id; Webhook Events have none, so their body hash is used.
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        if is_webhook_event(payload):
            return None
        return payloads.field(payload, "id")

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        if is_webhook_event(payload):
            return payloads.field(payload, "event", "type") or "PING"
        kind = payload.get("type") if isinstance(payload, dict) else None
        return INTERACTION_TYPES.get(kind, "") if isinstance(kind, int) else ""

    # https://discord.com/developers/docs/interactions/receiving-and-responding
    # An interaction PING is answered with a PONG; a Webhook Events PING with 204.
    def handshake(
        self, delivery: Delivery, payload: Any, secrets: Sequence[str] = ()
    ) -> Answer | None:
        if not isinstance(payload, dict):
            return None
        if is_webhook_event(payload):
            if payload.get("type") == 0:
                return Answer(204, b"", "text/plain")
            return None
        if payload.get("type") == 1:
            return Answer.json(200, {"type": 1})
        return None
