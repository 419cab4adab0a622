"""Which request headers are stored, and which only as ``[redacted]``.

A signature is not a secret: it is a MAC of one body and proves nothing for any
other, so signature headers are kept (replay and re-verification need them). A
credential is: a header that carries a password or a token as is would let
anyone who reads the admin impersonate the provider. Three rules redact:

- headers that carry credentials everywhere (Authorization, Cookie, ...);
- the provider's own secret-carrying headers (``Provider.secret_headers``);
- any header whose value, or a word of it, *is* one of the endpoint's secrets,
  whatever its name: a sender that put its secret in ``X-Webhook-Secret``, or
  a generic HMAC endpoint configured with a token header.

The last comparison goes through :func:`webhooks.providers.signing.any_matches`, so a
rejected sender learns nothing about the secret from how long it takes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from webhooks.providers import signing

REDACTED = "[redacted]"
#: Lower-case names of headers that carry credentials, whichever provider sends them.
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-access-token",
        "x-webhook-secret",
        "x-webhook-token",
    }
)
#: Secrets shorter than this are not looked for inside values (they would match by chance).
MIN_SECRET_CHARS = 8
_WORDS = re.compile(r"[\s,;=:]+")


def redact(
    headers: Mapping[str, str],
    *,
    secret_headers: Iterable[str] = (),
    secrets: Iterable[str] = (),
) -> dict[str, str]:
    """``headers`` as they may be stored: credentials redacted, NUL characters dropped."""
    hidden = CREDENTIAL_HEADERS | {name.lower() for name in secret_headers}
    known = [secret.encode() for secret in secrets if len(secret) >= MIN_SECRET_CHARS]
    return {
        name: REDACTED
        if name.lower() in hidden or holds_secret(value, known)
        else clean(value)
        for name, value in headers.items()
    }


def holds_secret(value: str, secrets: list[bytes]) -> bool:
    """True when ``value``, or one of its words, is one of ``secrets``."""
    if not secrets:
        return False
    words = [value.strip(), *_WORDS.split(value)]
    return signing.any_matches(
        secrets, [word.encode("utf-8", "surrogatepass") for word in words if word]
    )


def clean(value: str) -> str:
    # NUL cannot be stored in PostgreSQL text columns. CR and LF are kept: the
    # admin escapes them, and the relay's HTTP client refuses to send them.
    return value.replace("\x00", "")
