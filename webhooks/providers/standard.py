from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from typing import Any, ClassVar

from webhooks.exceptions import InvalidSignature
from webhooks.providers import signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes | None:
    """The MAC key of a ``whsec_<base64>`` secret: the decoded bytes (padding optional)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def header(delivery: Delivery, name: str) -> str | None:
    """``webhook-<name>``, or the same value under Svix's ``svix-<name>``."""
    return delivery.header(f"webhook-{name}") or delivery.header(f"svix-{name}")


def verify_signed(
    delivery: Delivery,
    keys: Sequence[bytes],
    *,
    tolerance: int | None,
    now: float,
) -> None:
    """Check the Standard Webhooks headers of ``delivery`` against every MAC key."""
    signatures = signing.require(header(delivery, "signature"))
    message_id = signing.require(header(delivery, "id"), "message id")
    raw_timestamp = signing.require(header(delivery, "timestamp"), "timestamp")
    timestamp = signing.parse_timestamp(raw_timestamp)
    given = []
    for entry in signatures.split():
        version, found, signature = entry.partition(",")
        if not found:
            raise InvalidSignature("malformed_signature", "expected version,signature")
        if version == "v1":
            given.append(signing.decode_base64(signature))
    signed = f"{message_id}.{raw_timestamp}.".encode() + delivery.body
    expected = [signing.hmac_digest(key, signed) for key in keys]
    if not signing.any_matches(expected, given):
        raise InvalidSignature("signature_mismatch")
    signing.check_tolerance(timestamp, tolerance, now)


class StandardWebhooksProvider(Provider):
    id = "standard"
    name = "Standard Webhooks (Svix, Resend, Clerk, ...)"
    docs_url = "https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md"
    default_tolerance = 300
    #: The header names :meth:`sign` uses: ``webhook-*``, or ``svix-*`` for Svix's brands.
    header_prefix: ClassVar[str] = "webhook"

    @classmethod
    def generate_secret(cls) -> str:
        return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()

    # webhook-signature: space-separated "v1,<base64 HMAC-SHA256 of id.timestamp.body>"
    # entries (several during rotation); other versions (v1a is Ed25519) are skipped.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        keys = [key for key in map(secret_key, secrets) if key is not None]
        verify_signed(delivery, keys, tolerance=tolerance, now=now)

    # Signs with the header names of header_prefix; Svix's library reads both families.
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
        key = secret_key(secret)
        if key is None:
            raise ValueError("a Standard Webhooks secret is whsec_ followed by base64")
        signed = f"{delivery_id}.{timestamp}.".encode() + body
        signature = base64.b64encode(signing.hmac_digest(key, signed)).decode()
        prefix = self.header_prefix
        return Signed(
            {
                f"{prefix}-id": delivery_id,
                f"{prefix}-timestamp": str(timestamp),
                f"{prefix}-signature": f"v1,{signature}",
            },
            url,
        )

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return header(delivery, "id")
