from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence

from webhooks.exceptions import InvalidSignature
from webhooks.providers import signing
from webhooks.providers.base import Signed
from webhooks.providers.configurable import ConfigurableProvider
from webhooks.providers.delivery import Delivery


class BasicAuthProvider(ConfigurableProvider):
    """HTTP Basic credentials, for providers that sign nothing (Postmark, many SaaS).

    The endpoint's secret is ``user:password``; the provider is given the URL
    ``https://user:password@host/webhooks/<slug>/``. The body itself is not
    protected, so use HTTPS.
    """

    id = "basic"
    name = "HTTP Basic auth"
    docs_url = "https://datatracker.ietf.org/doc/html/rfc7617"

    @classmethod
    def generate_secret(cls) -> str:
        return "webhooks:" + secrets.token_urlsafe(24)

    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        header = signing.require(
            delivery.header("authorization"), "Authorization header"
        )
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise InvalidSignature("malformed_signature", "expected Basic credentials")
        try:
            credentials = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSignature(
                "malformed_signature", "credentials are not base64"
            ) from None
        if b":" not in credentials:
            raise InvalidSignature(
                "malformed_signature", "credentials are not user:password"
            )
        if not signing.any_matches(
            [secret.encode() for secret in secrets], [credentials]
        ):
            raise InvalidSignature("signature_mismatch")

    # What a client sends for https://user:password@host/...: the secret, base64.
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
        credentials = base64.b64encode(secret.encode()).decode()
        return Signed({"Authorization": f"Basic {credentials}"}, url)
