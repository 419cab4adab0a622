from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from webhooks.exceptions import InvalidSignature, ProviderConfigError
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def load_key(secret: str) -> ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey:
    """A P-256 key from an endpoint secret: PEM, or base64 DER as SendGrid shows it.

    SendGrid's Mail Settings show the verification key as base64 DER
    SubjectPublicKeyInfo. A private key (PKCS#8) is accepted too: it lets
    ``webhooks_send`` sign test deliveries, and verifies with its public half.
    """
    text = secret.strip()
    key: Any
    try:
        if text.startswith("-----BEGIN"):
            data = text.encode()
            key = (
                serialization.load_pem_private_key(data, password=None)
                if "PRIVATE KEY" in text
                else serialization.load_pem_public_key(data)
            )
        else:
            der = base64.b64decode(text, validate=True)
            try:
                key = serialization.load_der_public_key(der)
            except ValueError:
                key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
        raise ProviderConfigError(
            "a SendGrid secret must be the base64 (or PEM) verification key"
        ) from None
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey
    ) or not isinstance(key.curve, ec.SECP256R1):
        raise ProviderConfigError("a SendGrid key is an ECDSA P-256 key")
    return key


def public_key(secret: str) -> ec.EllipticCurvePublicKey:
    key = load_key(secret)
    return key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key


class SendGridProvider(Provider):
    """SendGrid's signed Event Webhook.

    The endpoint's secret is the verification key from SendGrid's Mail
    Settings (a public key: it can verify but not sign). To send test
    deliveries with ``webhooks_send``, give the endpoint a private key
    instead (``--generate-secret`` makes one); it verifies with its public half.
    """

    id = "sendgrid"
    name = "SendGrid"
    docs_url = "https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features"

    @classmethod
    def generate_secret(cls) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return base64.b64encode(der).decode()

    def check_secret(self, secret: str) -> None:
        load_key(secret)

    # X-Twilio-Email-Event-Webhook-Signature: base64 DER ECDSA (P-256, SHA-256) of
    # the X-Twilio-Email-Event-Webhook-Timestamp value followed by the raw body.
    # SendGrid applies no freshness window; an endpoint's tolerance is applied when set.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        given = signing.decode_base64(
            signing.require(delivery.header(SIGNATURE_HEADER))
        )
        raw_timestamp = signing.require(delivery.header(TIMESTAMP_HEADER), "timestamp")
        timestamp = signing.parse_timestamp(raw_timestamp)
        signed = raw_timestamp.encode() + delivery.body
        # Every key is tried, so the time taken does not depend on which one matched.
        matched = False
        for key in [public_key(secret) for secret in secrets]:
            try:
                key.verify(given, signed, ec.ECDSA(hashes.SHA256()))
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
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(
                "SendGrid signs with its private key; the endpoint holds only the "
                "public verification key (give it a private key to send test deliveries)"
            )
        signature = key.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        return Signed(
            {
                SIGNATURE_HEADER: base64.b64encode(signature).decode(),
                TIMESTAMP_HEADER: str(timestamp),
            },
            url,
        )

    # One delivery is a batch of events, each with its own sg_event_id; the batch is
    # identified by them all, so a retried batch is a duplicate.
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        ids = [payloads.field(event, "sg_event_id") for event in events_of(payload)]
        if not ids or not all(ids):
            return None
        return ",".join(str(event_id) for event_id in ids)

    # A batch holding one kind of event is typed by it; a mixed batch is "batch".
    def event_type(self, delivery: Delivery, payload: Any) -> str:
        kinds = {payloads.field(event, "event") or "" for event in events_of(payload)}
        if len(kinds) == 1:
            return kinds.pop()
        return "batch" if kinds else ""


def events_of(payload: Any) -> list[Any]:
    return payload if isinstance(payload, list) else []
