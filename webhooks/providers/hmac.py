from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from webhooks.exceptions import InvalidSignature, ProviderConfigError
from webhooks.providers import signing
from webhooks.providers.base import Signed
from webhooks.providers.configurable import ConfigurableProvider
from webhooks.providers.delivery import Delivery

PLACEHOLDER = re.compile(r"\{(?:timestamp|id|url)\}")


class HmacProvider(ConfigurableProvider):
    """Generic HMAC for providers without a module of their own.

    Options (besides the id and type ones): ``header`` holding the signature,
    ``algorithm`` (sha1, sha256, sha512), ``encoding`` (hex or base64), a
    ``prefix`` such as ``"sha256="``, and the signed ``template``, where
    ``{body}`` is the raw body, ``{timestamp}`` the value of
    ``timestamp_header`` (then checked against the tolerance), ``{id}`` the
    delivery id and ``{url}`` the public URL.
    """

    id = "hmac"
    name = "Generic HMAC"
    option_defaults: ClassVar[Mapping[str, Any]] = {
        **ConfigurableProvider.option_defaults,
        "header": "X-Signature",
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "",
        "template": "{body}",
        "timestamp_header": "",
    }

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        if self.options["algorithm"] not in signing.ALGORITHMS:
            raise ProviderConfigError(
                f"algorithm must be one of {sorted(signing.ALGORITHMS)}"
            )
        if self.options["encoding"] not in ("hex", "base64"):
            raise ProviderConfigError("encoding must be hex or base64")
        if "{body}" not in self.options["template"]:
            raise ProviderConfigError("template must contain {body}")
        if (
            "{timestamp}" in self.options["template"]
            and not self.options["timestamp_header"]
        ):
            raise ProviderConfigError(
                "a template with {timestamp} needs timestamp_header"
            )

    def signs_request_url(self) -> bool:
        return "{url}" in self.options["template"]

    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        header = signing.require(delivery.header(self.options["header"]))
        prefix = self.options["prefix"]
        if not header.startswith(prefix):
            raise InvalidSignature(
                "malformed_signature", f"expected {prefix}<signature>"
            )
        given = signing.decode(header.removeprefix(prefix), self.options["encoding"])
        message, timestamp = self._message(delivery)
        expected = [
            signing.hmac_digest(secret.encode(), message, self.options["algorithm"])
            for secret in secrets
        ]
        if not signing.any_matches(expected, [given]):
            raise InvalidSignature("signature_mismatch")
        if timestamp is not None:
            signing.check_tolerance(timestamp, tolerance, now)

    # The timestamp and id go into their configured headers, and the message is
    # built by the same _message() that verify() uses, so the two cannot drift.
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
        headers = {}
        if self.options["timestamp_header"]:
            headers[self.options["timestamp_header"]] = str(timestamp)
        if self.options["id_header"]:
            headers[self.options["id_header"]] = delivery_id
        delivery = Delivery(
            "POST",
            {
                "content-type": content_type,
                **{k.lower(): v for k, v in headers.items()},
            },
            body,
            None,
            url,
            float(timestamp),
        )
        message, _ = self._message(delivery)
        digest = signing.hmac_digest(
            secret.encode(), message, self.options["algorithm"]
        )
        encoded = (
            digest.hex()
            if self.options["encoding"] == "hex"
            else base64.b64encode(digest).decode()
        )
        headers[self.options["header"]] = self.options["prefix"] + encoded
        return Signed(headers, url)

    def _message(self, delivery: Delivery) -> tuple[bytes, int | None]:
        before, _, after = self.options["template"].partition("{body}")
        timestamp = None
        # An id_field id lives in the body, so the body is parsed to find it.
        payload = self.parse(delivery) if self.options["id_field"] else None
        values = {
            "{id}": self.delivery_id(delivery, payload) or "",
            "{url}": delivery.url,
        }
        if self.options["timestamp_header"]:
            raw = signing.require(
                delivery.header(self.options["timestamp_header"]), "timestamp"
            )
            timestamp = signing.parse_timestamp(raw)
            values["{timestamp}"] = raw

        # One pass, so a value that itself looks like a placeholder stays as sent.
        def fill(text: str) -> str:
            return PLACEHOLDER.sub(lambda match: values.get(match.group(0), ""), text)

        before, after = fill(before), fill(after)
        return before.encode() + delivery.body + after.encode(), timestamp
