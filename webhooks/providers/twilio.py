from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import Provider, Signed
from webhooks.providers.delivery import Delivery

DEFAULT_PORTS = {"http": 80, "https": 443}


def url_variants(url: str) -> list[str]:
    """The URLs Twilio may have signed for ``url``: without any port, and with one.

    Twilio's own validator accepts a signature over the URL with its port
    removed, whatever the port, or with the port given (the scheme's default
    port when none is). The host is kept exactly as written (case included),
    as Twilio signs it.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return [url]
    if port is None:
        default_port = DEFAULT_PORTS.get(parts.scheme)
        if default_port is None:
            return [urlunsplit(parts)]
        with_port = parts._replace(netloc=f"{parts.netloc}:{default_port}")
        return [urlunsplit(parts), urlunsplit(with_port)]
    without_port = parts._replace(netloc=parts.netloc[: parts.netloc.rfind(":")])
    return [urlunsplit(without_port), urlunsplit(parts)]


def signed_string(url: str, delivery: Delivery) -> bytes:
    """The URL, then every form field's name and value, by name then value."""
    if delivery.content_type not in payloads.FORM_TYPES:
        return url.encode()
    try:
        pairs = parse_qsl(delivery.body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise InvalidSignature("signature_mismatch", "form body is not UTF-8") from None
    values: dict[str, set[str]] = {}
    for name, value in pairs:
        values.setdefault(name, set()).add(value)
    text = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    return text.encode()


class TwilioProvider(Provider):
    id = "twilio"
    name = "Twilio"
    docs_url = "https://www.twilio.com/docs/usage/webhooks/webhooks-security"

    def signs_request_url(self) -> bool:
        return True

    # X-Twilio-Signature: base64 HMAC-SHA1 (HMAC-SHA256 when the settings header names
    # it) of the full public URL plus the sorted form fields. JSON bodies are not in
    # the signed string; the URL carries bodySHA256=<hex> of the body instead, which
    # must match too. Behind a proxy the URL must be rebuilt exactly: see
    # WEBHOOKS_PUBLIC_URL and WEBHOOKS_TRUSTED_PROXIES.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        given = signing.decode_base64(
            signing.require(delivery.header("x-twilio-signature"))
        )
        algorithm = self._algorithm(delivery)
        if delivery.content_type not in payloads.FORM_TYPES:
            self._check_body_hash(delivery)
        messages = [signed_string(url, delivery) for url in url_variants(delivery.url)]
        expected = [
            signing.hmac_digest(secret.encode(), message, algorithm)
            for secret in secrets
            for message in messages
        ]
        if not signing.any_matches(expected, [given]):
            raise InvalidSignature("signature_mismatch")

    # Signs as Twilio does by default (HMAC-SHA1, no settings header).
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
        if content_type.split(";")[0].strip().lower() not in payloads.FORM_TYPES:
            separator = "&" if urlsplit(url).query else "?"
            url += f"{separator}bodySHA256={hashlib.sha256(body).hexdigest()}"
        delivery = Delivery(
            "POST", {"content-type": content_type}, body, None, url, float(timestamp)
        )
        digest = signing.hmac_digest(
            secret.encode(), signed_string(url, delivery), "sha1"
        )
        return Signed({"X-Twilio-Signature": base64.b64encode(digest).decode()}, url)

    def _algorithm(self, delivery: Delivery) -> str:
        # As the SDK's get_signature_algorithm: no header, or one naming no algorithm,
        # means the legacy HMAC_SHA1; HMAC_SHA1 and HMAC_SHA256 may be named explicitly.
        settings = delivery.header("x-twilio-webhooks-signature-settings") or ""
        algorithm = "HMAC_SHA1"
        for item in settings.split(","):
            name, found, value = item.partition("=")
            if found and name.strip() == "algorithm" and value.strip():
                algorithm = value.strip()
        known = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}
        if algorithm.upper() not in known:
            raise InvalidSignature("malformed_signature", "unknown signature algorithm")
        return known[algorithm.upper()]

    def _check_body_hash(self, delivery: Delivery) -> None:
        declared = parse_qs(urlsplit(delivery.url).query).get("bodySHA256", [])
        if len(declared) != 1:
            raise InvalidSignature("signature_mismatch", "URL carries no bodySHA256")
        actual = hashlib.sha256(delivery.body).hexdigest().encode()
        if not signing.any_matches([actual], [declared[0].lower().encode()]):
            raise InvalidSignature(
                "signature_mismatch", "body does not match bodySHA256"
            )

    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return delivery.header("i-twilio-idempotency-token")

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        for field, kind in (
            ("MessageStatus", "message"),
            ("SmsStatus", "message"),
            ("CallStatus", "call"),
        ):
            status = payloads.field(payload, field)
            if status:
                return f"{kind}.{status}"
        return ""
