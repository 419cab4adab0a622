"""Finding a delivery's endpoint and its secrets, kept briefly in the process.

Reading them costs two queries per delivery, more than the INSERT that stores
the event, and they rarely change. Each process keeps them for
``WEBHOOKS_ENDPOINT_CACHE_SECONDS``: changes saved in the same process apply at
once (model signals clear the cache), changes made elsewhere (another server,
the command line) within that time. A delivery that fails verification against
kept secrets is verified again against fresh ones, so a rotation never refuses
a genuine delivery.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Endpoint, EndpointSecret

#: Unknown slugs are kept too (as None); a flood of them must not grow memory.
MAX_KEPT = 1000

_kept: dict[str, tuple[float, Endpoint | None]] = {}
_lock = threading.Lock()


def find(slug: str, *, fresh: bool = False) -> tuple[Endpoint | None, bool]:
    """The active endpoint called ``slug`` (None if there is none), and whether it was kept."""
    ttl = conf.ENDPOINT_CACHE_SECONDS
    now = time.monotonic()
    if ttl > 0 and not fresh:
        with _lock:
            kept = _kept.get(slug)
        if kept is not None and now - kept[0] < ttl:
            return kept[1], True
    endpoint = (
        Endpoint.objects.prefetch_related("secrets")
        .filter(slug=slug, is_active=True)
        .first()
    )
    if endpoint is not None:
        # Asked at least twice per delivery (verification, header redaction):
        # this instance answers from its own list instead of going through the
        # related manager each time. It is a snapshot, as its prefetch already is.
        setattr(endpoint, "valid_secrets", KeptSecrets(endpoint))  # noqa: B010
    if ttl > 0:
        with _lock:
            if len(_kept) >= MAX_KEPT:
                _kept.clear()
            _kept[slug] = (now, endpoint)
    return endpoint, False


class KeptSecrets:
    """An endpoint's secrets that verify deliveries now, newest first, kept until one expires."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._secrets = [
            (secret.value, secret.expires_at)
            for secret in sorted(
                endpoint.secrets.all(), key=lambda secret: secret.pk, reverse=True
            )
        ]
        self._valid: list[str] = []
        self._until: datetime | None = None
        self._sort(timezone.now())

    def _sort(self, now: datetime) -> None:
        valid = [(v, e) for v, e in self._secrets if e is None or e > now]
        self._valid = [value for value, _ in valid]
        self._until = min((e for _, e in valid if e is not None), default=None)

    def __call__(self) -> list[str]:
        if self._until is not None:
            now = timezone.now()
            if now >= self._until:
                self._sort(now)
        return list(self._valid)


def kept(slug: str) -> Endpoint | None:
    """The endpoint called ``slug`` if this process keeps it, fresh; never a query.

    None when it is not kept, kept as unknown, or kept too long: the caller then
    takes the path that may ask the database.
    """
    ttl = conf.ENDPOINT_CACHE_SECONDS
    with _lock:
        entry = _kept.get(slug)
    if entry is None or time.monotonic() - entry[0] >= ttl:
        return None
    return entry[1]


def forget() -> None:
    with _lock:
        _kept.clear()


@receiver(
    post_save, sender=Endpoint, dispatch_uid="webhooks.ingest.endpoints.endpoint_saved"
)
@receiver(
    post_delete,
    sender=Endpoint,
    dispatch_uid="webhooks.ingest.endpoints.endpoint_deleted",
)
@receiver(
    post_save,
    sender=EndpointSecret,
    dispatch_uid="webhooks.ingest.endpoints.secret_saved",
)
@receiver(
    post_delete,
    sender=EndpointSecret,
    dispatch_uid="webhooks.ingest.endpoints.secret_deleted",
)
def _changed(**kwargs: Any) -> None:
    forget()
