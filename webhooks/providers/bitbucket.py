from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webhooks.providers import signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery


class BitbucketProvider(Provider):
    id = "bitbucket"
    name = "Bitbucket"
    docs_url = "https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/#Secure-webhooks"

    # X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>. Same header name as
    # GitHub's legacy SHA-1 one, but SHA-256 here. Nothing is timestamped, so the
    # X-Request-UUID (Data Center: X-Request-Id) is the replay defence.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        header = signing.require(delivery.header("x-hub-signature"))
        signing.check_prefixed_hmac(header, delivery.body, secrets)

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
        signature = signing.hmac_digest(secret.encode(), body).hex()
        return Signed({"X-Hub-Signature": f"sha256={signature}"}, url)

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return delivery.header("x-request-uuid") or delivery.header("x-request-id")

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        return delivery.header("x-event-key") or ""
