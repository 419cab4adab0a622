from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery


class IntercomProvider(Provider):
    id = "intercom"
    name = "Intercom"
    docs_url = "https://developers.intercom.com/docs/webhooks/webhook-notifications"

    # X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body> keyed with the app's
    # client secret: SHA-1, unlike Bitbucket's header of the same name. Nothing is
    # timestamped; the notification id in the body is the replay defence. The "ping"
    # sent when a subscription is saved is an ordinary, signed notification.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        header = signing.require(delivery.header("x-hub-signature"))
        signing.check_prefixed_hmac(header, delivery.body, secrets, "sha1")

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
        signature = signing.hmac_digest(secret.encode(), body, "sha1").hex()
        return Signed({"X-Hub-Signature": f"sha1={signature}"}, url)

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return payloads.field(payload, "id")

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        return payloads.field(payload, "topic") or ""
