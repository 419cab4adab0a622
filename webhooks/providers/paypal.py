"""PayPal: an RSA signature checked with a certificate that PayPal's own hosts serve.

The certificate is named by the ``PAYPAL-CERT-URL`` of the delivery, which must
be one of PayPal's API hosts over HTTPS. The provider asks its key source
(:class:`~webhooks.providers.base.KeySource`) for it and fetches nothing
itself: the source fetches, caps, times out and keeps certificates, and says
which roots a chain must lead to. The chain must lead to one of those roots,
be valid at the delivery's time, and name PayPal.
"""

from __future__ import annotations

import base64
import secrets
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from webhooks.exceptions import InvalidSignature
from webhooks.providers import payloads, signing
from webhooks.providers.base import KeyUnavailable, Provider, Signed
from webhooks.providers.delivery import Delivery

#: The hosts PayPal serves its message-signing certificates from (live and sandbox).
CERTIFICATE_HOSTS = frozenset(
    {
        "api.paypal.com",
        "api-m.paypal.com",
        "api.sandbox.paypal.com",
        "api-m.sandbox.paypal.com",
    }
)
CERTIFICATE_PATH = "/v1/notifications/certs/"
#: The signing certificate's name must be PayPal's own.
NAME_SUFFIX = ".paypal.com"
ALGORITHM = "SHA256withRSA"


def certificate_url_allowed(url: str) -> bool:
    """True only for https on one of PayPal's hosts, default port, certificate path."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and parts.username is None
        and parts.password is None
        and port in (None, 443)
        and (parts.hostname or "") in CERTIFICATE_HOSTS
        and parts.path.startswith(CERTIFICATE_PATH)
        and not parts.query
        and not parts.fragment
    )


def signed_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> bytes:
    # The body enters only as its CRC32, written as an unsigned decimal.
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


def names(certificate: x509.Certificate) -> list[str]:
    found = [
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    try:
        extension = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except x509.ExtensionNotFound:
        return found
    return found + extension.value.get_values_for_type(x509.DNSName)


@dataclass(frozen=True)
class SendingKey:
    """A private key and the certificate URL it is published at, for sending tests.

    PayPal signs with its own key, so ``webhooks_send`` can sign PayPal
    deliveries only where :attr:`PayPalProvider.signer` is set to such a key
    (tests and local demos whose key source serves the matching certificate).
    """

    key: rsa.RSAPrivateKey
    certificate_url: str


class PayPalProvider(Provider):
    """PayPal webhooks, verified offline with PayPal's certificate.

    The endpoint's secret is the webhook's id from PayPal's developer dashboard
    (it is part of the signed message, not sent with it); several ids may be
    valid at once, as with any secret.
    """

    id = "paypal"
    name = "PayPal"
    docs_url = "https://developer.paypal.com/api/rest/webhooks/rest/#link-selfverificationmethod"
    uses_remote_keys = True

    #: Set only where test deliveries are signed (see :class:`SendingKey`).
    signer: ClassVar[SendingKey | None] = None

    @classmethod
    def generate_secret(cls) -> str:
        # The form of PayPal's webhook ids: 17 upper-case letters and digits.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(secrets.choice(alphabet) for _ in range(17))

    # PAYPAL-TRANSMISSION-SIG: base64 RSA PKCS#1 v1.5 SHA-256 signature of
    # "<transmission id>|<transmission time>|<webhook id>|<CRC32 of the raw body>",
    # made with the key of the certificate at PAYPAL-CERT-URL. The webhook id is the
    # endpoint's secret. PayPal sets no freshness window; an endpoint's tolerance
    # applies to PAYPAL-TRANSMISSION-TIME when set.
    def verify(
        self,
        delivery: Delivery,
        secrets: Sequence[str],
        *,
        tolerance: int | None,
        now: float,
    ) -> None:
        given = signing.decode_base64(
            signing.require(delivery.header("paypal-transmission-sig"))
        )
        transmission_id = signing.require(
            delivery.header("paypal-transmission-id"), "transmission id"
        )
        transmission_time = signing.require(
            delivery.header("paypal-transmission-time"), "transmission time"
        )
        certificate_url = signing.require(
            delivery.header("paypal-cert-url"), "certificate URL"
        )
        algorithm = delivery.header("paypal-auth-algo") or ALGORITHM
        if algorithm.strip() != ALGORITHM:
            raise InvalidSignature(
                "malformed_signature", "unsupported PAYPAL-AUTH-ALGO"
            )
        try:
            sent_at = datetime.fromisoformat(transmission_time.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidSignature(
                "malformed_signature", "transmission time is not ISO 8601"
            ) from None
        if not certificate_url_allowed(certificate_url):
            raise InvalidSignature(
                "signature_mismatch", "certificate URL is not PayPal's"
            )
        key = self._public_key(certificate_url, now)
        matched = False
        for webhook_id in secrets:
            message = signed_message(
                transmission_id, transmission_time, webhook_id, delivery.body
            )
            try:
                key.verify(given, message, padding.PKCS1v15(), hashes.SHA256())
            except BadSignature:
                continue
            matched = True
        if not matched:
            raise InvalidSignature("signature_mismatch")
        if sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=UTC)
        signing.check_tolerance(sent_at.timestamp(), tolerance, now)

    def _public_key(self, url: str, now: float) -> rsa.RSAPublicKey:
        try:
            pem = self.keys.fetch(url)
        except KeyUnavailable:
            # Nothing verifiable to hand now (the source logs why); PayPal retries
            # a 401 later.
            raise InvalidSignature(
                "signature_mismatch", "certificate unavailable"
            ) from None
        try:
            chain = x509.load_pem_x509_certificates(pem)
        except ValueError:
            raise InvalidSignature(
                "signature_mismatch", "certificate does not parse"
            ) from None
        moment = datetime.fromtimestamp(now, UTC)
        if not chain_is_trusted(chain, self.keys.trusted_roots(), moment):
            raise InvalidSignature("signature_mismatch", "certificate not trusted")
        if not any(name.lower().endswith(NAME_SUFFIX) for name in names(chain[0])):
            raise InvalidSignature("signature_mismatch", "certificate is not PayPal's")
        key = chain[0].public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidSignature("signature_mismatch", "certificate key is not RSA")
        return key

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
        signer = self.signer
        if signer is None:
            raise NotImplementedError(
                "PayPal signs with its own private key, which only PayPal holds"
            )
        sent_at = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        signature = signer.key.sign(
            signed_message(delivery_id, sent_at, secret, body),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        return Signed(
            {
                "PAYPAL-TRANSMISSION-ID": delivery_id,
                "PAYPAL-TRANSMISSION-TIME": sent_at,
                "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
                "PAYPAL-CERT-URL": signer.certificate_url,
                "PAYPAL-AUTH-ALGO": ALGORITHM,
            },
            url,
        )

    # The event's WH-... id is kept on PayPal's retries; each attempt has its own
    # transmission id.
    def delivery_id(self, delivery: Delivery, payload: Any) -> str | None:
        return payloads.field(payload, "id")

    def event_type(self, delivery: Delivery, payload: Any) -> str:
        return payloads.field(payload, "event_type") or ""


def chain_is_trusted(
    chain: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    moment: datetime,
) -> bool:
    """True when each certificate is valid now and signed by the next, the last by a root."""
    if not chain:
        return False
    for certificate, issuer in zip(chain, chain[1:], strict=False):
        if not valid_at(certificate, moment) or not issued_by(certificate, issuer):
            return False
    last = chain[-1]
    if not valid_at(last, moment):
        return False
    return any(
        root.subject == last.issuer and valid_at(root, moment) and issued_by(last, root)
        for root in roots
    )


def valid_at(certificate: x509.Certificate, moment: datetime) -> bool:
    return certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (BadSignature, ValueError, TypeError):
        return False
    # An issuer must be a CA.
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca
