"""Plain helpers that build test data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from webhooks.models import Endpoint, Event


def make_endpoint(
    slug: str = "hooks",
    provider: str = "github",
    secret: str | None = "It's a Secret to Everybody",
    **fields: Any,
) -> Endpoint:
    endpoint = Endpoint.objects.create(slug=slug, provider=provider, **fields)
    if secret is not None:
        endpoint.secrets.create(value=secret)
    return endpoint


def expire_secret(endpoint: Endpoint, value: str, *, ago: timedelta) -> None:
    endpoint.secrets.filter(value=value).update(expires_at=timezone.now() - ago)


def make_event(endpoint: Endpoint, delivery_id: str = "d-1", **fields: Any) -> Event:
    defaults: dict[str, Any] = {
        "provider": endpoint.provider,
        "event_type": "push",
        "body": b'{"ok": true}',
        "payload": {"ok": True},
        "headers": {"content-type": "application/json"},
    }
    values = {**defaults, **fields}
    values.setdefault("size", len(values["body"]))
    return Event.objects.create(endpoint=endpoint, delivery_id=delivery_id, **values)
