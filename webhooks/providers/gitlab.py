from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing, standard
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery


def signing_keys(secret: str) -> list[bytes]:
    """The MAC keys a signing token may stand for.

    GitLab has not documented whether the token is the key as written or, as in
    Standard Webhooks, base64 of it; both are tried. Either needs the token.
    """
    keys = [secret.encode()]
    decoded = standard.secret_key(secret)
    if decoded is not None and decoded not in keys:
        keys.append(decoded)
    return keys


class GitLabProvider(Provider):
    id = "gitlab"
    name = "GitLab"
    docs_url = (
        "https://docs.gitlab.com/user/project/integrations/webhooks/#create-a-webhook"
    )
    # Applies to the signing-token scheme only; the classic token carries no time.
    default_tolerance = 300
    secret_headers = frozenset({"x-gitlab-token"})

    # Two schemes. The classic one sends the secret token itself in X-Gitlab-Token:
    # it signs NOTHING (neither body nor time), so it only proves the sender knows the
    # token; restrict the endpoint's source networks as well. The newer signing token
    # sends Standard Webhooks headers (webhook-id/-timestamp/-signature, "v1,<base64
    # HMAC-SHA256 of id.timestamp.body>"), which cover the body and a fresh timestamp.
    # A delivery is genuine when the token matches or, failing that, the signature does.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        token = delivery.header("x-gitlab-token")
        signed = standard.header(delivery, "signature") is not None
        if token is not None and token.strip():
            if signing.any_matches(
                [secret.encode() for secret in secrets], [token.encode()]
            ):
                return
            if not signed:
                raise InvalidSignature("signature_mismatch")
        if not signed:
            raise InvalidSignature("missing_signature", "no X-Gitlab-Token header")
        keys = [key for secret in secrets for key in signing_keys(secret)]
        standard.verify_signed(delivery, keys, tolerance=tolerance, now=now)

    # Sends the classic token, which every GitLab version does.
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
        return Signed({"X-Gitlab-Token": secret}, url)

    # Idempotency-Key (GitLab 17.4+) stays the same on retries; the signing-token
    # scheme repeats it as webhook-id. Older versions only send the event UUID.
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return (
            delivery.header("idempotency-key")
            or standard.header(delivery, "id")
            or delivery.header("x-gitlab-event-uuid")
        )

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        return (
            delivery.header("x-gitlab-event")
            or payloads.field(payload, "object_kind")
            or ""
        )
