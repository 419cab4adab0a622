"""Signature primitives shared by the providers.

Every comparison of secret-derived bytes goes through :func:`any_matches`, which
uses ``hmac.compare_digest`` and never stops early: how long verification takes
says nothing about which candidate, or how many, matched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence

from webhooks.exceptions import InvalidSignature

ALGORITHMS = frozenset({"sha1", "sha256", "sha512"})


def hmac_digest(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported HMAC algorithm {algorithm!r}")
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def any_matches(expected: Iterable[bytes], given: Iterable[bytes]) -> bool:
    """True when any given signature equals any expected one, in constant time per pair."""
    given = list(given)
    matched = False
    for candidate in expected:
        for signature in given:
            matched |= hmac.compare_digest(candidate, signature)
    return matched


def check_prefixed_hmac(
    header: str, body: bytes, secrets: Sequence[str], algorithm: str = "sha256"
) -> None:
    """Check ``<algorithm>=<hex HMAC of the body>``, GitHub's form that others copied."""
    scheme, _, signature = header.partition("=")
    if scheme != algorithm:
        raise InvalidSignature("malformed_signature", f"expected {algorithm}=<hex>")
    given = decode_hex(signature)
    expected = [hmac_digest(secret.encode(), body, algorithm) for secret in secrets]
    if not any_matches(expected, [given]):
        raise InvalidSignature("signature_mismatch")


def require(value: str | None, what: str = "signature header") -> str:
    """Return a header value, or fail with ``missing_signature`` when it is absent or blank."""
    if value is None or not value.strip():
        raise InvalidSignature("missing_signature", f"no {what}")
    return value.strip()


def decode_hex(value: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidSignature("malformed_signature", "signature is not hex") from None


def decode_base64(value: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignature(
            "malformed_signature", "signature is not base64"
        ) from None


def decode(value: str, encoding: str) -> bytes:
    """Decode a signature written in ``encoding`` ("hex" or "base64")."""
    if encoding == "hex":
        return decode_hex(value)
    if encoding == "base64":
        return decode_base64(value)
    raise ValueError(f"unsupported signature encoding {encoding!r}")


def parse_timestamp(value: str) -> int:
    """Parse unix seconds, failing with ``malformed_signature``."""
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise InvalidSignature("malformed_signature", "timestamp is not unix seconds")
    return int(value)


def check_tolerance(
    timestamp: float, tolerance: int | None, now: float, *, reject_future: bool = True
) -> None:
    """Fail with ``timestamp_out_of_tolerance`` when ``timestamp`` is too far from ``now``.

    ``tolerance`` None disables the check. Some schemes (Stripe) only reject old
    timestamps, which ``reject_future=False`` reproduces.
    """
    if tolerance is None:
        return
    if timestamp < now - tolerance or (reject_future and timestamp > now + tolerance):
        raise InvalidSignature("timestamp_out_of_tolerance")


def split_items(
    header: str, separator: str = ",", assign: str = "="
) -> list[tuple[str, str]]:
    """Split ``k=v<sep>k=v`` into pairs, keeping repeats (several ``v1=`` during rotation)."""
    pairs = []
    for item in header.split(separator):
        key, found, value = item.strip().partition(assign)
        if not found or not key:
            raise InvalidSignature(
                "malformed_signature", "signature header is not key=value items"
            )
        pairs.append((key.strip(), value.strip()))
    return pairs
