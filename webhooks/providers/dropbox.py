from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Answer, Delivery

CHALLENGE_TYPE = "challenge"
NOTIFICATION_TYPE = "list_folder"


def challenge(delivery: Delivery) -> str | None:
    """The ``challenge`` query parameter of the URL, as sent."""
    values = parse_qs(urlsplit(delivery.url).query, keep_blank_values=True)
    found = values.get("challenge")
    return found[0] if found else None


class DropboxProvider(Provider):
    """Dropbox's file-change notifications. The endpoint's secret is the app secret."""

    id = "dropbox"
    name = "Dropbox"
    docs_url = "https://www.dropbox.com/developers/reference/webhooks"
    extra_methods = frozenset({"GET"})

    @classmethod
    def generate_secret(cls) -> str:
        # The form of Dropbox app secrets: 15 lower-case letters and digits.
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(secrets.choice(alphabet) for _ in range(15))

    # POST: X-Dropbox-Signature: <hex HMAC-SHA256 of the raw body> keyed with the app
    # secret. GET ?challenge=<value> (the verification request when the URL is
    # registered) is not signed: anyone may ask, and all it gets is its own value
    # back as text that no browser will sniff, as Dropbox asks.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        if delivery.method == "GET":
            signing.require(challenge(delivery), "challenge")
            return
        given = signing.decode_hex(
            signing.require(delivery.header("x-dropbox-signature"))
        )
        expected = [
            signing.hmac_digest(secret.encode(), delivery.body) for secret in secrets
        ]
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
        mac = signing.hmac_digest(secret.encode(), body).hex()
        return Signed({"X-Dropbox-Signature": mac}, url)

    def parse(self, delivery: Delivery) -> Any:
        if delivery.method == "GET":
            return {CHALLENGE_TYPE: challenge(delivery)}
        return super().parse(delivery)

    # Dropbox sends no id, and a notification only says "these accounts changed,
    # look again": the same body later is news, not a copy. So each notification is
    # its own event (a retry too: looking again twice is harmless, missing a change
    # is not); a verification request is known by its challenge.
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        if delivery.method == "GET":
            return f"{CHALLENGE_TYPE}:{payloads.field(payload, CHALLENGE_TYPE) or ''}"
        digest = hashlib.sha256(delivery.body).hexdigest()
        return f"sha256:{digest}@{delivery.received_at:.6f}"

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        if delivery.method == "GET":
            return CHALLENGE_TYPE
        return NOTIFICATION_TYPE if isinstance(payload, dict) else ""

    # https://www.dropbox.com/developers/reference/webhooks#documentation
    # The challenge, echoed as plain text with nosniff.
    def handshake(
        self, delivery: Delivery, payload: Any, secrets: Sequence[str] = ()
    ) -> Answer | None:
        if delivery.method != "GET":
            return None
        value = payloads.field(payload, CHALLENGE_TYPE) or ""
        return Answer(
            200,
            value.encode(),
            "text/plain; charset=utf-8",
            {"X-Content-Type-Options": "nosniff"},
        )
