from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery


class GitHubProvider(Provider):
    id = "github"
    name = "GitHub"
    docs_url = "https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries"

    # X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>. No timestamp is
    # signed, so the X-GitHub-Delivery id (kept on redelivery) is the replay defence.
    # The legacy SHA-1 header is not accepted.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        header = signing.require(delivery.header("x-hub-signature-256"))
        signing.check_prefixed_hmac(header, delivery.body, secrets)

    # GitHub still sends the legacy SHA-1 header next to the SHA-256 one.
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
        key = secret.encode()
        return Signed(
            {
                "X-Hub-Signature": "sha1="
                + signing.hmac_digest(key, body, "sha1").hex(),
                "X-Hub-Signature-256": "sha256=" + signing.hmac_digest(key, body).hex(),
            },
            url,
        )

    def parse(self, delivery: Delivery) -> Any:
        # A hook set to application/x-www-form-urlencoded sends the JSON in a "payload" field.
        form = super().parse(delivery)
        if delivery.content_type in payloads.FORM_TYPES and isinstance(form, dict):
            embedded = form.get("payload")
            return (
                payloads.parse_json(embedded.encode())
                if isinstance(embedded, str)
                else None
            )
        return form

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return delivery.header("x-github-delivery")

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        return delivery.header("x-github-event") or ""
