"""PayPal, offline: a certificate chain made here stands in for PayPal's, served by a
fake certificate source that records every URL it is asked for."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.core.management import CommandError, call_command
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.providers.contract import SignedBodyContract
from tests.webhooks.providers.live_send import send_and_check
from webhooks.delivery import Delivery
from webhooks.exceptions import InvalidSignature
from webhooks.models import Endpoint, Event
from webhooks.providers.paypal import (
    Certificates,
    PayPalProvider,
    SendingKey,
    certificate_url_allowed,
)

WEBHOOK_ID = "1JE4291016473214C"
OTHER_WEBHOOK_ID = "8PT597110X687430LKGECATA"
CERT_URL = (
    "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270"
)
LEAF_NAME = "messageverificationcerts.paypal.com"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(
    name: str,
    key: rsa.RSAPrivateKey,
    issuer_name: str,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    days: tuple[int, int] = (-1, 365),
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days[0]))
        .not_valid_after(now + timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


class Chain:
    """A root, an intermediate and a leaf, as a CA would issue PayPal's."""

    def __init__(
        self, leaf_name: str = LEAF_NAME, leaf_days: tuple[int, int] = (-1, 365)
    ) -> None:
        self.root_key, self.middle_key, self.leaf_key = rsa_key(), rsa_key(), rsa_key()
        self.root = certificate(
            "Test Root CA", self.root_key, "Test Root CA", self.root_key, ca=True
        )
        self.middle = certificate(
            "Test Intermediate CA",
            self.middle_key,
            "Test Root CA",
            self.root_key,
            ca=True,
        )
        self.leaf = certificate(
            leaf_name,
            self.leaf_key,
            "Test Intermediate CA",
            self.middle_key,
            ca=False,
            days=leaf_days,
        )

    def pem(self) -> bytes:
        return b"".join(
            cert.public_bytes(serialization.Encoding.PEM)
            for cert in (self.leaf, self.middle)
        )


class FakeCertificates(Certificates):
    """Serves one chain, trusts given roots, and records every URL asked for."""

    def __init__(self, chain: Chain, roots: list[x509.Certificate]) -> None:
        self.chain, self.trusted, self.fetched = chain, roots, []

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.chain.pem()

    def roots(self) -> list[x509.Certificate]:
        return self.trusted


CHAIN = Chain()


@pytest.fixture(autouse=True)
def certificates(monkeypatch) -> Iterator[FakeCertificates]:
    fake = FakeCertificates(CHAIN, [CHAIN.root])
    monkeypatch.setattr(PayPalProvider, "certificates", fake)
    PayPalProvider.forget_certificates()
    yield fake
    PayPalProvider.forget_certificates()


def transmission_time(timestamp: float | None = None) -> str:
    moment = datetime.fromtimestamp(
        time.time() if timestamp is None else timestamp, UTC
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def paypal_headers(
    body: bytes,
    webhook_id: str,
    *,
    key: rsa.RSAPrivateKey = CHAIN.leaf_key,
    cert_url: str = CERT_URL,
    timestamp: float | None = None,
) -> dict[str, str]:
    """Signed as PayPal documents it: id|time|webhook id|CRC32 of the body, decimal."""
    transmission_id = str(uuid.uuid1())
    sent_at = transmission_time(timestamp)
    message = f"{transmission_id}|{sent_at}|{webhook_id}|{zlib.crc32(body)}"
    signature = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": sent_at,
        "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
        "PAYPAL-CERT-URL": cert_url,
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        "User-Agent": "PayPal/AUHD-214.0-58326478",
    }


def capture_event() -> bytes:
    return json.dumps(
        {
            "id": "WH-" + uuid.uuid4().hex.upper()[:17],
            "create_time": "2026-11-22T10:00:00.000Z",
            "resource_type": "capture",
            "event_type": "PAYMENT.CAPTURE.COMPLETED",
            "summary": "Payment completed for EUR 42.0 EUR",
            "resource": {"id": uuid.uuid4().hex[:17].upper(), "status": "COMPLETED"},
        }
    ).encode()


class TestPayPal(SignedBodyContract):
    provider = "paypal"
    secret = WEBHOOK_ID
    other_secret = OTHER_WEBHOOK_ID

    def sample(self) -> bytes:
        return capture_event()

    def sign(self, body, secret, *, timestamp=None, content_type=""):
        return paypal_headers(body, secret, timestamp=timestamp)

    def malformed(self, headers):
        return {**headers, "PAYPAL-TRANSMISSION-SIG": "%%% not base64 %%%"}

    def without_signature(self, headers):
        return {k: v for k, v in headers.items() if k != "PAYPAL-TRANSMISSION-SIG"}

    # -- where certificates come from ----------------------------------------------------

    @pytest.mark.parametrize(
        "url",
        [
            "https://evil.example.com/v1/notifications/certs/CERT-1",
            "http://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com.evil.example.com/v1/notifications/certs/CERT-1",
            "https://evilpaypal.com/v1/notifications/certs/CERT-1",
            "https://user@api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
            "https://api.paypal.com/v1/oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/CERT-1?x=1",
            "file:///etc/passwd",
            "https://127.0.0.1/v1/notifications/certs/CERT-1",
            "https://[::1/v1/notifications/certs/CERT-1",
        ],
    )
    def test_certificate_from_any_other_place_is_refused_and_never_fetched(
        self, provider_client: Client, endpoint: Endpoint, certificates, url
    ) -> None:
        assert not certificate_url_allowed(url)
        body = self.sample()
        headers = paypal_headers(body, WEBHOOK_ID, cert_url=url)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "signature_mismatch"
        )
        assert certificates.fetched == []

    @pytest.mark.parametrize(
        "url",
        [
            CERT_URL,
            "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            "https://api-m.sandbox.paypal.com:443/v1/notifications/certs/CERT-1",
            "https://API.PayPal.com/v1/notifications/certs/CERT-1",
        ],
    )
    def test_paypal_certificate_urls_are_allowed(self, url) -> None:
        assert certificate_url_allowed(url)

    def test_certificate_is_fetched_once_and_kept(
        self, provider_client: Client, endpoint: Endpoint, certificates
    ) -> None:
        for _ in range(3):
            body = self.sample()
            response = self.deliver(provider_client, body, self.sign(body, WEBHOOK_ID))
            assert response.status_code == 200, response.content
        assert certificates.fetched == [CERT_URL]

    def test_chain_to_an_untrusted_root_is_refused(
        self, provider_client: Client, endpoint: Endpoint, monkeypatch
    ) -> None:
        monkeypatch.setattr(
            PayPalProvider, "certificates", FakeCertificates(CHAIN, [Chain().root])
        )
        body = self.sample()
        self.assert_rejected(
            self.deliver(provider_client, body, self.sign(body, WEBHOOK_ID)),
            "signature_mismatch",
        )

    def test_expired_certificate_is_refused(
        self, provider_client: Client, endpoint: Endpoint, monkeypatch
    ) -> None:
        expired = Chain(leaf_days=(-30, -1))
        monkeypatch.setattr(
            PayPalProvider, "certificates", FakeCertificates(expired, [expired.root])
        )
        body = self.sample()
        headers = paypal_headers(body, WEBHOOK_ID, key=expired.leaf_key)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "signature_mismatch"
        )

    def test_certificate_not_named_for_paypal_is_refused(
        self, provider_client: Client, endpoint: Endpoint, monkeypatch
    ) -> None:
        other = Chain(leaf_name="webhooks.example.com")
        monkeypatch.setattr(
            PayPalProvider, "certificates", FakeCertificates(other, [other.root])
        )
        body = self.sample()
        headers = paypal_headers(body, WEBHOOK_ID, key=other.leaf_key)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "signature_mismatch"
        )

    def test_signature_by_another_key_than_the_certificate_is_refused(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = paypal_headers(body, WEBHOOK_ID, key=rsa_key())
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "signature_mismatch"
        )

    def test_unreachable_certificate_is_a_401_not_an_error(
        self, provider_client: Client, endpoint: Endpoint, monkeypatch
    ) -> None:
        class Unreachable(FakeCertificates):
            def fetch(self, url: str) -> bytes:
                raise OSError("connection refused")

        monkeypatch.setattr(
            PayPalProvider, "certificates", Unreachable(CHAIN, [CHAIN.root])
        )
        body = self.sample()
        self.assert_rejected(
            self.deliver(provider_client, body, self.sign(body, WEBHOOK_ID)),
            "signature_mismatch",
        )

    def test_other_auth_algorithm_is_malformed(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        headers = {**self.sign(body, WEBHOOK_ID), "PAYPAL-AUTH-ALGO": "SHA1withRSA"}
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "malformed_signature"
        )

    # -- provider-specific -----------------------------------------------------------

    def test_event_is_identified_by_its_wh_id_across_transmissions(
        self, provider_client: Client, endpoint: Endpoint
    ) -> None:
        body = self.sample()
        first = self.deliver(provider_client, body, self.sign(body, WEBHOOK_ID))
        # A retry is a new transmission (new id, time and signature) of the same event.
        second = self.deliver(provider_client, body, self.sign(body, WEBHOOK_ID))
        assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
        event = Event.objects.get()
        assert event.delivery_id == json.loads(body)["id"]
        assert event.event_type == "PAYMENT.CAPTURE.COMPLETED"

    def test_stale_transmission_is_rejected_when_the_endpoint_sets_a_tolerance(
        self, provider_client: Client
    ) -> None:
        make_endpoint("contract", "paypal", WEBHOOK_ID, tolerance_seconds=300)
        body = self.sample()
        headers = self.sign(body, WEBHOOK_ID, timestamp=time.time() - 3600)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "timestamp_out_of_tolerance"
        )

    def test_sign_without_a_sending_key_says_only_paypal_can(self) -> None:
        with pytest.raises(NotImplementedError, match="only PayPal holds"):
            PayPalProvider().sign(
                b"{}",
                WEBHOOK_ID,
                url="https://hooks.example.com/",
                delivery_id="x",
                timestamp=1,
                content_type="application/json",
            )


@pytest.mark.django_db
def test_webhooks_send_without_a_sending_key_is_a_clear_command_error() -> None:
    make_endpoint("send-paypal", "paypal", WEBHOOK_ID)
    with pytest.raises(CommandError, match="Cannot sign for 'send-paypal'"):
        call_command(
            "webhooks_send",
            "send-paypal",
            "--url",
            "http://127.0.0.1:9",
            stdout=StringIO(),
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "event_type", ["PAYMENT.CAPTURE.COMPLETED", "CHECKOUT.ORDER.APPROVED"]
)
def test_webhooks_send_with_a_sending_key_delivers_a_verified_sample(
    live_server, monkeypatch, certificates, event_type
) -> None:
    monkeypatch.setattr(PayPalProvider, "signer", SendingKey(CHAIN.leaf_key, CERT_URL))
    make_endpoint("send-paypal", "paypal", WEBHOOK_ID)
    event = send_and_check(live_server.url, "send-paypal", event_type)
    assert event.event_type == event_type
    assert event.delivery_id == json.loads(bytes(event.body))["id"]
    headers = event.headers
    message = (
        f"{headers['paypal-transmission-id']}|{headers['paypal-transmission-time']}"
        f"|{WEBHOOK_ID}|{zlib.crc32(bytes(event.body))}"
    )
    CHAIN.leaf.public_key().verify(
        base64.b64decode(headers["paypal-transmission-sig"]),
        message.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert certificates.fetched == [CERT_URL]


def test_certificate_is_never_fetched_on_an_event_loop(certificates) -> None:
    # The fast ASGI path verifies on the loop; a fetch there would stall it, so the
    # delivery is refused there and verified again (and fetched) in a thread.
    provider = PayPalProvider()
    body = capture_event()
    delivery = Delivery(
        method="POST",
        headers={
            "content-type": "application/json",
            **{k.lower(): v for k, v in paypal_headers(body, WEBHOOK_ID).items()},
        },
        body=body,
        source_ip="127.0.0.1",
        url="https://hooks.example.com/webhooks/paypal/",
        received_at=time.time(),
    )

    async def on_the_loop() -> None:
        provider.verify(delivery, [WEBHOOK_ID], tolerance=None, now=time.time())

    with pytest.raises(InvalidSignature):
        asyncio.run(on_the_loop())
    assert certificates.fetched == []
    provider.verify(delivery, [WEBHOOK_ID], tolerance=None, now=time.time())
    asyncio.run(on_the_loop())  # kept now: verified on the loop without a fetch
    assert certificates.fetched == [CERT_URL]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("async_db_connections")
async def test_delivery_through_the_asgi_front_door_fetches_off_the_loop(
    certificates,
) -> None:
    from asgiref.sync import sync_to_async
    from channels.testing import HttpCommunicator

    from tests.asgi import application

    await sync_to_async(make_endpoint)("paypal", "paypal", WEBHOOK_ID)
    for _ in range(2):
        body = capture_event()
        headers = [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *[
                (name.lower().encode(), value.encode())
                for name, value in paypal_headers(body, WEBHOOK_ID).items()
            ],
        ]
        communicator = HttpCommunicator(
            application, "POST", "/webhooks/paypal/", body=body, headers=headers
        )
        response = await communicator.get_response()
        await communicator.wait()
        assert response["status"] == 200, response["body"]
    assert await Event.objects.acount() == 2
    assert certificates.fetched == [CERT_URL]


def test_default_trusted_roots_are_the_certifi_bundle() -> None:
    # PayPal's certificates chain to a public CA; the default store must hold such roots.
    roots = Certificates().roots()
    assert len(roots) > 50
    assert all(isinstance(root, x509.Certificate) for root in roots)
    assert any("DigiCert" in root.subject.rfc4514_string() for root in roots)
