from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery


def _signature_fields(payload: Any) -> dict[str, Any] | None:
    """The timestamp, token and signature: a ``signature`` object (JSON) or top-level
    fields (the legacy form-encoded webhooks)."""
    if not isinstance(payload, dict):
        return None
    nested = payload.get("signature")
    return nested if isinstance(nested, dict) else payload


class MailgunProvider(Provider):
    id = "mailgun"
    name = "Mailgun"
    docs_url = "https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks"
    # Mailgun's SDK default.
    default_tolerance = 900

    # The signature travels in the body: hex HMAC-SHA256, keyed with the webhook
    # signing key, of the timestamp followed by the token. The event data itself is
    # NOT signed, so the token is remembered (it is the dedup key) to refuse replays,
    # and the timestamp must be fresh.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        fields = _signature_fields(self.parse(delivery)) or {}
        signature, token, raw_timestamp = (
            fields.get(name) for name in ("signature", "token", "timestamp")
        )
        if signature is None:
            raise InvalidSignature("missing_signature", "no signature in the body")
        if not all(isinstance(value, str | int) for value in (token, raw_timestamp)):
            raise InvalidSignature(
                "malformed_signature", "needs a timestamp and a token"
            )
        if not isinstance(signature, str):
            raise InvalidSignature("malformed_signature", "signature is not hex")
        timestamp = signing.parse_timestamp(str(raw_timestamp))
        given = signing.decode_hex(signature)
        signed = f"{raw_timestamp}{token}".encode()
        expected = [signing.hmac_digest(secret.encode(), signed) for secret in secrets]
        if not signing.any_matches(expected, [given]):
            raise InvalidSignature("signature_mismatch")
        signing.check_tolerance(timestamp, tolerance, now)

    # The signature goes into the body, so the body is rebuilt with it: the body's
    # own timestamp and token are kept when it has them.
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
        is_form = content_type.split(";")[0].strip().lower() in payloads.FORM_TYPES
        document: dict[str, Any] = {}
        if is_form:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
        else:
            parsed = json.loads(body)
            if not isinstance(parsed, dict):
                raise ValueError("a Mailgun body is a JSON object")
            document = parsed
            nested = document.get("signature")
            fields = nested if isinstance(nested, dict) else {}
            document["signature"] = fields
        fields.setdefault("timestamp", str(timestamp))
        fields.setdefault("token", secrets.token_hex(25))
        signed = f"{fields['timestamp']}{fields['token']}".encode()
        fields["signature"] = signing.hmac_digest(secret.encode(), signed).hex()
        signed_body = (
            urlencode(fields)
            if is_form
            else json.dumps(document, separators=(",", ":"))
        )
        return Signed({}, url, signed_body.encode())

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        # Mailgun's event-data id is only unique within a day; the token is not reused.
        token = (_signature_fields(payload) or {}).get("token")
        return token if isinstance(token, str) else None

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        return (
            payloads.field(payload, "event-data", "event")
            or payloads.field(payload, "event")
            or ""
        )
