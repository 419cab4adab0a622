"""PayPal's certificate fetched for real: the key source against a local HTTPS server.

A CA made here signs the server's certificate (for 127.0.0.1); the server runs
in a thread and answers by path: a certificate chain, one too large (declared
or not), one that never comes, one that trickles in, a redirect, a 404. The
key source checks the server with a TLS context trusting only that CA, and a
small time limit. Nothing here asserts a duration: a limit that did not hold
would leave the test waiting until the server released it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.providers.test_paypal import (
    CERT_URL,
    CHAIN,
    WEBHOOK_ID,
    capture_event,
    paypal_headers,
)
from webhooks.ingest import keys
from webhooks.ingest.keys import RemoteKeys
from webhooks.models import Event
from webhooks.providers.base import KeyUnavailable

LIMIT = 4096
TIMEOUT = 0.5


def tls_ca() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local Test TLS CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def server_certificate(
    ca_key: rsa.RSAPrivateKey, ca: x509.Certificate
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


class CertificateServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Answers)
        self.asked: Counter[str] = Counter()
        #: Set at teardown: handlers holding a request back let it go.
        self.released = threading.Event()

    def handle_error(self, request, client_address) -> None:
        # A client that gave up mid-answer (what these tests provoke) is expected.
        pass

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}{path}"


class Answers(BaseHTTPRequestHandler):
    server: CertificateServer

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path
        self.server.asked[path] += 1
        if path.startswith("/v1/notifications/certs/"):
            self.answer(CHAIN.pem())
        elif path == "/too-large":
            self.answer(b"-" * (LIMIT + 1))
        elif path == "/too-large-undeclared":
            # No Content-Length: the body ends when the connection closes.
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(LIMIT // 512 + 2):
                self.wfile.write(b"-" * 512)
                self.wfile.flush()
            self.close_connection = True
        elif path == "/stalled":
            self.server.released.wait(60)
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "3000")
            self.end_headers()
            for _ in range(3000):
                if self.server.released.wait(0.01):
                    return
                self.wfile.write(b"-")
                self.wfile.flush()
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", self.server.url(CERT_PATH))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-pem-file")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


CERT_PATH = "/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca_key, ca = tls_ca()
    key, certificate = server_certificate(ca_key, ca)
    (folder / "ca.pem").write_bytes(pem(ca))
    (folder / "server.pem").write_bytes(pem(certificate))
    (folder / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


@pytest.fixture
def server(tls_files, monkeypatch) -> Iterator[CertificateServer]:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    _, certificate, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    httpd = CertificateServer()
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.released.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


@pytest.fixture
def source(tls_files) -> RemoteKeys:
    ca, _, _ = tls_files
    return RemoteKeys(
        tls=ssl.create_default_context(cafile=str(ca)),
        roots=lambda: [CHAIN.root],
        timeout=TIMEOUT,
        max_bytes=LIMIT,
    )


def test_certificate_is_fetched_over_https_and_kept(server, source) -> None:
    url = server.url(CERT_PATH)
    assert source.fetch(url) == CHAIN.pem()
    assert source.fetch(url) == CHAIN.pem()
    assert server.asked[CERT_PATH] == 1


def test_a_server_whose_certificate_is_not_trusted_is_not_read(server) -> None:
    # The default context trusts certifi's public roots, not the test's CA.
    with pytest.raises(KeyUnavailable, match="fetch failed"):
        RemoteKeys(timeout=TIMEOUT).fetch(server.url(CERT_PATH))


@pytest.mark.parametrize("path", ["/too-large", "/too-large-undeclared"])
def test_an_answer_over_the_size_cap_is_refused_and_not_kept(
    server, source, path
) -> None:
    url = server.url(path)
    for _ in range(2):
        with pytest.raises(KeyUnavailable, match=f"larger than {LIMIT} bytes"):
            source.fetch(url)
    assert server.asked[path] == 2


def test_a_server_that_never_answers_is_given_up_on(server, source) -> None:
    with pytest.raises(KeyUnavailable, match="fetch failed: ReadTimeout"):
        source.fetch(server.url("/stalled"))


def test_an_answer_that_trickles_in_is_given_up_at_the_time_limit(
    server, source
) -> None:
    # Each byte comes well within the read timeout; only the total limit stops it.
    with pytest.raises(KeyUnavailable, match=f"not complete within {TIMEOUT} s"):
        source.fetch(server.url("/trickle"))


def test_a_redirect_is_not_followed(server, source) -> None:
    with pytest.raises(KeyUnavailable, match="answered 302"):
        source.fetch(server.url("/redirect"))
    assert server.asked[CERT_PATH] == 0


def test_an_error_answer_is_unavailable(server, source) -> None:
    with pytest.raises(KeyUnavailable, match="answered 404"):
        source.fetch(server.url("/v2/nothing"))


def test_only_https_is_ever_fetched(server, source) -> None:
    http_url = server.url(CERT_PATH).replace("https://", "http://")
    with pytest.raises(KeyUnavailable, match="only https"):
        source.fetch(http_url)
    assert sum(server.asked.values()) == 0


def test_nothing_is_fetched_on_an_event_loop_until_kept(server, source) -> None:
    url = server.url(CERT_PATH)

    async def on_the_loop() -> bytes:
        return source.fetch(url)

    with pytest.raises(KeyUnavailable, match="never fetched on an event loop"):
        asyncio.run(on_the_loop())
    assert server.asked[CERT_PATH] == 0
    source.fetch(url)
    assert asyncio.run(on_the_loop()) == CHAIN.pem()
    assert server.asked[CERT_PATH] == 1


class LocalPayPal(RemoteKeys):
    """The real source, reaching PayPal's certificate URLs at the local server."""

    def __init__(self, server: CertificateServer, **options) -> None:
        super().__init__(**options)
        self.server = server

    def download(self, url: str) -> bytes:
        assert url.startswith("https://api.paypal.com/")
        return super().download(
            self.server.url(url.removeprefix("https://api.paypal.com"))
        )


@pytest.mark.django_db
def test_delivery_verified_with_a_certificate_fetched_over_https(
    server, tls_files, monkeypatch
) -> None:
    ca, _, _ = tls_files
    monkeypatch.setattr(
        keys,
        "remote",
        LocalPayPal(
            server,
            tls=ssl.create_default_context(cafile=str(ca)),
            roots=lambda: [CHAIN.root],
            timeout=TIMEOUT,
            max_bytes=LIMIT,
        ),
    )
    make_endpoint("paypal", "paypal", WEBHOOK_ID)
    client = Client(enforce_csrf_checks=True)
    for _ in range(2):
        body = capture_event()
        response = client.post(
            "/webhooks/paypal/",
            body,
            content_type="application/json",
            headers=paypal_headers(body, WEBHOOK_ID, cert_url=CERT_URL),
        )
        assert response.status_code == 200, response.content
    assert Event.objects.count() == 2
    assert server.asked[CERT_PATH] == 1


@pytest.mark.django_db
def test_delivery_is_refused_when_the_certificate_is_over_the_cap(
    server, tls_files, monkeypatch
) -> None:
    ca, _, _ = tls_files
    monkeypatch.setattr(
        keys,
        "remote",
        LocalPayPal(
            server,
            tls=ssl.create_default_context(cafile=str(ca)),
            roots=lambda: [CHAIN.root],
            timeout=TIMEOUT,
            max_bytes=len(CHAIN.pem()) - 1,
        ),
    )
    make_endpoint("paypal", "paypal", WEBHOOK_ID)
    body = capture_event()
    response = Client(enforce_csrf_checks=True).post(
        "/webhooks/paypal/",
        body,
        content_type="application/json",
        headers=paypal_headers(body, WEBHOOK_ID, cert_url=CERT_URL),
    )
    assert response.status_code == 401
    assert response.json()["reason"] == "signature_mismatch"
    assert Event.objects.count() == 0
    assert server.asked[CERT_PATH] == 1
