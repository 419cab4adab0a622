"""The answers of CONTRACT.md section 5, in one place."""

from __future__ import annotations

from collections.abc import Iterable

from webhooks.conf import conf
from webhooks.providers.delivery import Answer


def stored(event_id: int, created: bool) -> Answer:
    # The most frequent answer, written out: what json.dumps gives, byte for byte.
    status = b"received" if created else b"duplicate"
    return Answer(200, b'{"status": "%s", "id": %d}' % (status, event_id))


def ignored() -> Answer:
    """A verified delivery of an event type the endpoint does not take: acknowledged, not stored."""
    return Answer.json(200, {"status": "ignored"})


def invalid_signature(reason: str) -> Answer:
    return Answer.json(401, {"error": "invalid_signature", "reason": reason})


def forbidden(reason: str = "ip_not_allowed") -> Answer:
    return Answer.json(403, {"error": "forbidden", "reason": reason})


def unknown_endpoint() -> Answer:
    return Answer.json(404, {"error": "unknown_endpoint"})


def method_not_allowed(extra_methods: Iterable[str] = ()) -> Answer:
    allow = ", ".join(["POST", *sorted(extra_methods)])
    return Answer.json(405, {"error": "method_not_allowed"}, {"Allow": allow})


def body_too_large() -> Answer:
    return Answer.json(413, {"error": "body_too_large", "limit": conf.MAX_BODY_BYTES})


def rate_limited() -> Answer:
    return Answer.json(
        429, {"error": "rate_limited"}, {"Retry-After": str(conf.RETRY_AFTER_SECONDS)}
    )


def unavailable() -> Answer:
    return Answer.json(
        503, {"error": "unavailable"}, {"Retry-After": str(conf.RETRY_AFTER_SECONDS)}
    )
