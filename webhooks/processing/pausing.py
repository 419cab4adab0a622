"""Pausing an endpoint's processing: deliveries still verified, stored and answered.

While an endpoint is paused no worker claims its events (the claim query
leaves them out); resuming makes them due again in the order they would have
run. An endpoint with ``pause_after_failures`` set pauses itself after that
many handler runs in a row failed, with the reason recorded, so a broken
downstream stops burning attempts until someone has looked.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import F
from django.utils import timezone

from webhooks.models import Endpoint, Event

logger = logging.getLogger("webhooks")


def pause(endpoint: Endpoint, reason: str = "paused by an operator") -> bool:
    """Pause ``endpoint``; False if it was paused already."""
    now = timezone.now()
    changed = Endpoint.objects.filter(pk=endpoint.pk, paused=False).update(
        paused=True, paused_at=now, paused_reason=reason[:255], updated_at=now
    )
    if changed:
        endpoint.paused, endpoint.paused_at = True, now
        endpoint.paused_reason = reason[:255]
        logger.warning("Endpoint %r paused: %s", endpoint.slug, reason)
    else:  # paused already: keep the reason it was paused for
        endpoint.refresh_from_db(fields=["paused", "paused_at", "paused_reason"])
    return bool(changed)


def resume(endpoint: Endpoint) -> bool:
    """Resume ``endpoint``; its waiting events run in order. False if it was not paused."""
    from webhooks.processing import dispatch

    changed = Endpoint.objects.filter(pk=endpoint.pk, paused=True).update(
        paused=False,
        paused_at=None,
        paused_reason="",
        consecutive_failures=0,
        updated_at=timezone.now(),
    )
    endpoint.paused, endpoint.paused_at, endpoint.paused_reason = False, None, ""
    endpoint.consecutive_failures = 0
    if changed:
        logger.info("Endpoint %r resumed", endpoint.slug)
        dispatch.new_work()
    return bool(changed)


def waiting(endpoint: Endpoint) -> int:
    """Events of ``endpoint`` held back by the pause."""
    return Event.objects.filter(
        endpoint=endpoint,
        status__in=(Event.Status.PENDING, Event.Status.RETRYING),
    ).count()


def outcome(sender: type, event: Any, previous: str, **kwargs: Any) -> None:
    """Receiver of ``event_status_changed``: count failures in a row, pause at the limit."""
    if previous != Event.Status.PROCESSING:
        return
    endpoint: Endpoint = event.endpoint
    if event.status == Event.Status.SUCCEEDED:
        if endpoint.consecutive_failures:
            Endpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
            endpoint.consecutive_failures = 0
        return
    if event.status not in (Event.Status.RETRYING, Event.Status.FAILED):
        return
    limit = endpoint.pause_after_failures
    if not limit:
        return
    Endpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    count = (
        Endpoint.objects.filter(pk=endpoint.pk)
        .values_list("consecutive_failures", flat=True)
        .first()
    )
    endpoint.consecutive_failures = count or 0
    if count is not None and count >= limit and not endpoint.paused:
        first_line = (event.last_error or "").strip().splitlines()[:1]
        pause(
            endpoint,
            f"paused automatically: {count} handler runs in a row failed"
            + (f" (last: {first_line[0][:120]})" if first_line else ""),
        )
