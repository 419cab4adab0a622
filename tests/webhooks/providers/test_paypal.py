"""PayPal, offline: a certificate chain made here stands in for PayPal's, served by
the process's key source with its download replaced, which records every URL.

The contract tests sign with a key made here (oracle: none; our reading of the
docs); the published delivery of PayPal's own SDKs is verified at the end of
this file (oracle: published example in PayPal's SDK tests).
"""

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
from tests.webhooks.payloads.loader import payload
from tests.webhooks.providers.contract import SignedBodyContract
from tests.webhooks.providers.live_send import send_and_check
from webhooks.exceptions import InvalidSignature
from webhooks.ingest import keys
from webhooks.ingest.keys import RemoteKeys
from webhooks.models import Endpoint, Event
from webhooks.providers import get_provider
from webhooks.providers.base import KeyUnavailable
from webhooks.providers.delivery import Delivery
from webhooks.providers.paypal import (
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


class ServedKeys(RemoteKeys):
    """The real key source, keeping and all, whose download serves one chain and
    records every URL asked for."""

    def __init__(self, chain: Chain, roots: list[x509.Certificate]) -> None:
        super().__init__(roots=lambda: roots)
        self.chain, self.fetched = chain, []

    def download(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.chain.pem()


CHAIN = Chain()


@pytest.fixture(autouse=True)
def certificates(monkeypatch) -> Iterator[ServedKeys]:
    served = ServedKeys(CHAIN, [CHAIN.root])
    monkeypatch.setattr(keys, "remote", served)
    yield served


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
        monkeypatch.setattr(keys, "remote", ServedKeys(CHAIN, [Chain().root]))
        body = self.sample()
        self.assert_rejected(
            self.deliver(provider_client, body, self.sign(body, WEBHOOK_ID)),
            "signature_mismatch",
        )

    def test_expired_certificate_is_refused(
        self, provider_client: Client, endpoint: Endpoint, monkeypatch
    ) -> None:
        expired = Chain(leaf_days=(-30, -1))
        monkeypatch.setattr(keys, "remote", ServedKeys(expired, [expired.root]))
        body = self.sample()
        headers = paypal_headers(body, WEBHOOK_ID, key=expired.leaf_key)
        self.assert_rejected(
            self.deliver(provider_client, body, headers), "signature_mismatch"
        )

    def test_certificate_not_named_for_paypal_is_refused(
        self, provider_client: Client, endpoint: Endpoint, monkeypatch
    ) -> None:
        other = Chain(leaf_name="webhooks.example.com")
        monkeypatch.setattr(keys, "remote", ServedKeys(other, [other.root]))
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
        class Unreachable(ServedKeys):
            def download(self, url: str) -> bytes:
                raise KeyUnavailable("fetch failed: ConnectError")

        monkeypatch.setattr(keys, "remote", Unreachable(CHAIN, [CHAIN.root]))
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


def paypal_delivery(body: bytes) -> Delivery:
    return Delivery(
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


def test_certificate_is_never_fetched_on_an_event_loop(certificates) -> None:
    # The fast ASGI path verifies on the loop; a fetch there would stall it, so the
    # delivery is refused there and verified again (and fetched) in a thread.
    provider = PayPalProvider(keys=certificates)
    delivery = paypal_delivery(capture_event())

    async def on_the_loop() -> None:
        provider.verify(delivery, [WEBHOOK_ID], tolerance=None, now=time.time())

    with pytest.raises(InvalidSignature):
        asyncio.run(on_the_loop())
    assert certificates.fetched == []
    provider.verify(delivery, [WEBHOOK_ID], tolerance=None, now=time.time())
    asyncio.run(on_the_loop())  # kept now: verified on the loop without a fetch
    assert certificates.fetched == [CERT_URL]


def test_provider_built_without_a_key_source_fetches_nothing_and_refuses() -> None:
    delivery = paypal_delivery(capture_event())
    with pytest.raises(InvalidSignature) as raised:
        PayPalProvider().verify(delivery, [WEBHOOK_ID], tolerance=None, now=time.time())
    assert raised.value.reason == "signature_mismatch"


def test_key_source_reaches_only_providers_that_use_remote_keys(certificates) -> None:
    assert get_provider("paypal", keys=certificates).keys is certificates
    assert not hasattr(get_provider("github", keys=certificates), "fetched")


def test_a_key_source_answer_that_is_not_pem_is_a_mismatch(certificates) -> None:
    class Garbage(ServedKeys):
        def download(self, url: str) -> bytes:
            return b"<html>not a certificate</html>"

    provider = PayPalProvider(keys=Garbage(CHAIN, [CHAIN.root]))
    with pytest.raises(InvalidSignature) as raised:
        provider.verify(
            paypal_delivery(capture_event()),
            [WEBHOOK_ID],
            tolerance=None,
            now=time.time(),
        )
    assert raised.value.reason == "signature_mismatch"


def test_verification_is_a_function_of_the_time_given(certificates) -> None:
    # The certificate's validity is judged at ``now``, not at the wall clock.
    provider = PayPalProvider(keys=certificates)
    delivery = paypal_delivery(capture_event())
    provider.verify(delivery, [WEBHOOK_ID], tolerance=None, now=time.time())
    later = CHAIN.leaf.not_valid_after_utc.timestamp() + 1
    with pytest.raises(InvalidSignature):
        provider.verify(delivery, [WEBHOOK_ID], tolerance=None, now=later)


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
    roots = RemoteKeys().trusted_roots()
    assert len(roots) > 50
    assert all(isinstance(root, x509.Certificate) for root in roots)
    assert any("DigiCert" in root.subject.rfc4514_string() for root in roots)


# oracle: published example in PayPal's own SDKs. The delivery (body, transmission
# id and time, webhook id, signature) is the one both paypal/PayPal-Python-SDK
# (test/unit_tests/notifications_test.py) and paypal/PayPal-node-SDK
# (test/notification.js) verify; the certificate is what PayPal served for its
# PAYPAL-CERT-URL then (the node SDK's recorded answer, test/mocks/notification.js),
# and the intermediate and root are the trust chain paypalrestsdk shipped
# (paypalrestsdk/data). The certificate expired in 2017: verification is a
# function of the time given, so it runs at the transmission time.
VECTOR_TRANSMISSION_ID = "dfb3be50-fd74-11e4-8bf3-77339302725b"
VECTOR_TIME = "2015-05-18T15:45:13Z"
VECTOR_WEBHOOK_ID = "4JH86294D6297924G"
VECTOR_SIGNATURE = (
    "thy4/U002quzxFavHPwbfJGcc46E8rc5jzgyeafWm5mICTBdY/8rl7WJpn8JA0GKA+oDTPsSruqusw+"
    "XXg5RLAP7ip53Euh9Xu3UbUhQFX7UgwzE2FeYoY6lyRMiiiQLzy9BvHfIzNIVhPad4KnC339dr6y2l+"
    "mN8ALgI4GCdIh3/SoJO5wE64Bh/ueWtt8EVuvsvXfda2Le5a2TrOI9vLEzsm9GS79hAR/5oLexNz8U"
    "iZr045Mr5ObroH4w4oNfmkTaDk9Rj0G19uvISs5QzgmBpauKr7Nw++JI0pr/v5mFctQkoWJSGfBGzP"
    "RXawrvIIVHQ9Wer48GR2g9ZiApWg=="
)
VECTOR_CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"
VECTOR_NOW = datetime(2015, 5, 18, 15, 45, 20, tzinfo=UTC).timestamp()


class VectorKeys:
    """Serves the certificate as PayPal did, with the intermediate of its SDK's chain."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.asked.append(url)
        return (
            payload("paypal", "sdk_vector_certificate.pem")
            + b"\n"
            + payload("paypal", "digicert_sha2_ev_server_ca.pem")
        )

    def trusted_roots(self) -> list[x509.Certificate]:
        return [
            x509.load_pem_x509_certificate(
                payload("paypal", "digicert_high_assurance_ev_root_ca.pem")
            )
        ]


def vector_delivery(body: bytes, **changed: str) -> Delivery:
    headers = {
        "content-type": "application/json",
        "paypal-transmission-id": VECTOR_TRANSMISSION_ID,
        "paypal-transmission-time": VECTOR_TIME,
        "paypal-transmission-sig": VECTOR_SIGNATURE,
        "paypal-cert-url": VECTOR_CERT_URL,
        "paypal-auth-algo": "SHA256withRSA",
        **changed,
    }
    return Delivery(
        method="POST",
        headers=headers,
        body=body,
        source_ip="173.0.80.116",
        url="https://hooks.example.com/webhooks/paypal/",
        received_at=VECTOR_NOW,
    )


def test_published_vector_verifies() -> None:
    vector_keys = VectorKeys()
    body = payload("paypal", "sdk_vector_event.json")
    # The CRC32 has its top bit set: a signed rendering of it would not verify.
    assert zlib.crc32(body) >= 2**31
    PayPalProvider(keys=vector_keys).verify(
        vector_delivery(body), [VECTOR_WEBHOOK_ID], tolerance=None, now=VECTOR_NOW
    )
    assert vector_keys.asked == [VECTOR_CERT_URL]


@pytest.mark.parametrize(
    ("what", "body", "webhook_id", "changed"),
    [
        ("another body", b"tampered", VECTOR_WEBHOOK_ID, {}),
        ("another webhook id", None, "8PT597110X687430LKGECATA", {}),
        (
            "another transmission",
            None,
            VECTOR_WEBHOOK_ID,
            {"paypal-transmission-id": "x"},
        ),
        (
            "another time",
            None,
            VECTOR_WEBHOOK_ID,
            {"paypal-transmission-time": "2015-05-18T15:45:14Z"},
        ),
    ],
)
def test_published_vector_with_any_part_changed_is_a_mismatch(
    what, body, webhook_id, changed
) -> None:
    body = body or payload("paypal", "sdk_vector_event.json")
    with pytest.raises(InvalidSignature) as raised:
        PayPalProvider(keys=VectorKeys()).verify(
            vector_delivery(body, **changed),
            [webhook_id],
            tolerance=None,
            now=VECTOR_NOW,
        )
    assert raised.value.reason == "signature_mismatch", what


def test_published_vector_is_refused_once_its_certificate_expired() -> None:
    body = payload("paypal", "sdk_vector_event.json")
    with pytest.raises(InvalidSignature, match="not trusted"):
        PayPalProvider(keys=VectorKeys()).verify(
            vector_delivery(body), [VECTOR_WEBHOOK_ID], tolerance=None, now=time.time()
        )
