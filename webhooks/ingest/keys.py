"""Keys that providers publish on their own servers (PayPal's message-signing certificates).

Providers fetch nothing: ingest builds those that need such keys with
:data:`remote`, a :class:`RemoteKeys` shared by the process. It fetches over
HTTPS only, without following redirects, within a size cap and a total time
limit, keeps what it got per URL for a day, and never fetches on a running
event loop: the lean ASGI door verifies on the loop, where a fetch would stall
every request for seconds, so there a key not yet kept is unavailable, the
signature fails, and the delivery is verified again (and the key fetched) in a
thread. Which URLs may be asked for at all is the provider's decision (PayPal
allows only its own API hosts), made before it asks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Sequence

import certifi
import httpx
from cryptography import x509

from webhooks.providers.base import KeyUnavailable

logger = logging.getLogger("webhooks")

#: Seconds any one step may wait (connecting, each read), and by which the whole
#: answer must have arrived, counted from the start.
FETCH_TIMEOUT = 5.0
#: A certificate chain is a few KiB; anything larger is not one.
MAX_BYTES = 64 * 1024
#: PayPal's certificate URLs name one certificate each, so what was fetched stays right.
KEPT_SECONDS = 24 * 3600
KEPT_AT_MOST = 32
PEM_END = b"-----END CERTIFICATE-----"


@functools.cache
def public_roots() -> list[x509.Certificate]:
    """The CA roots of certifi's bundle, read once per process."""
    # One by one: a root that this version of cryptography refuses (or warns about,
    # such as a zero serial number) is left out instead of failing every delivery.
    with open(certifi.where(), "rb") as bundle:
        text = bundle.read()
    roots = []
    for block in text.split(PEM_END):
        start = block.find(b"-----BEGIN CERTIFICATE-----")
        if start < 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                roots.append(x509.load_pem_x509_certificate(block[start:] + PEM_END))
            except (ValueError, Warning):
                continue
    return roots


def running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class RemoteKeys:
    """Fetches and keeps published keys; a :class:`~webhooks.providers.base.KeySource`.

    ``tls`` is the context server certificates are checked with (default:
    certifi's roots), ``roots`` what fetched certificate chains must lead to.
    Tests give both from a CA they make, and a small ``timeout`` and
    ``max_bytes``.
    """

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        roots: Callable[[], Sequence[x509.Certificate]] = public_roots,
        timeout: float = FETCH_TIMEOUT,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.tls = tls
        self.roots = roots
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[bytes, float]] = {}

    def trusted_roots(self) -> Sequence[x509.Certificate]:
        return self.roots()

    def fetch(self, url: str) -> bytes:
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(url)
        if kept is not None and kept[1] > now:
            return kept[0]
        if running_loop():
            raise KeyUnavailable("not kept yet, and never fetched on an event loop")
        data = self.download(url)
        with self._lock:
            if len(self._kept) >= KEPT_AT_MOST:
                self._kept.clear()
            self._kept[url] = (data, now + KEPT_SECONDS)
        return data

    def forget(self) -> None:
        with self._lock:
            self._kept.clear()

    def download(self, url: str) -> bytes:
        """GET ``url`` over HTTPS; raise :class:`KeyUnavailable` for anything but a small 200."""
        if not url.startswith("https://"):
            raise KeyUnavailable("only https URLs are fetched")
        try:
            return self._get(url)
        except KeyUnavailable as error:
            logger.warning("Key at %s not fetched: %s", url, error)
            raise
        except (httpx.HTTPError, OSError, ValueError) as error:
            logger.warning("Key at %s not fetched: %r", url, error)
            raise KeyUnavailable(f"fetch failed: {type(error).__name__}") from None

    def _get(self, url: str) -> bytes:
        deadline = time.monotonic() + self.timeout
        verify: ssl.SSLContext | bool = self.tls if self.tls is not None else True
        with (
            httpx.Client(
                verify=verify, timeout=self.timeout, follow_redirects=False
            ) as client,
            client.stream("GET", url, headers={"Accept": "*/*"}) as response,
        ):
            if response.status_code != 200:
                raise KeyUnavailable(f"answered {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise KeyUnavailable(f"larger than {self.max_bytes} bytes")
            data = bytearray()
            # Each read is bounded by the timeout; the deadline bounds them all, so
            # a server that sends a byte at a time cannot hold a thread for long.
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > self.max_bytes:
                    raise KeyUnavailable(f"larger than {self.max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise KeyUnavailable(f"not complete within {self.timeout} s")
        return bytes(data)


#: The process's source of published keys, which ingest builds providers with.
remote = RemoteKeys()
