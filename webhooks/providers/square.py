from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery


class SquareProvider(Provider):
    """Square signs the notification URL together with the body.

    Option ``notification_url``: the URL exactly as written on the Square
    subscription, when it differs from the URL this server sees as public (see
    ``WEBHOOKS_PUBLIC_URL`` and ``WEBHOOKS_TRUSTED_PROXIES``). Empty: the public
    URL of the request.
    """

    id = "square"
    name = "Square"
    docs_url = "https://developer.squareup.com/docs/webhooks/step3validate"
    option_defaults: ClassVar[Mapping[str, Any]] = {"notification_url": ""}

    def signs_request_url(self) -> bool:
        # The notification_url option names the URL, whatever the request's was.
        return not self.options["notification_url"]

    # x-square-hmacsha256-signature: base64 HMAC-SHA256, keyed with the subscription's
    # signature key, of the notification URL followed by the raw body. Nothing is
    # timestamped; the body's event_id is the replay defence.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        given = signing.decode_base64(
            signing.require(delivery.header("x-square-hmacsha256-signature"))
        )
        signed = self._notification_url(delivery.url).encode() + delivery.body
        expected = [signing.hmac_digest(secret.encode(), signed) for secret in secrets]
        if not signing.any_matches(expected, [given]):
            raise InvalidSignature("signature_mismatch")

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
        signed = self._notification_url(url).encode() + body
        digest = signing.hmac_digest(secret.encode(), signed)
        return Signed(
            {"x-square-hmacsha256-signature": base64.b64encode(digest).decode()}, url
        )

    def _notification_url(self, url: str) -> str:
        return str(self.options["notification_url"]) or url

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return payloads.field(payload, "event_id")
