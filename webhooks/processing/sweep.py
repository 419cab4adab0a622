"""The sweep of the task modes: events whose task never ran are handed out again.

In the ``tasks`` and ``celery`` modes a task is only a wake-up; the event row
says what is due. An event still due ``WEBHOOKS_SWEEP_AFTER_SECONDS`` after its
time (its message was lost, its worker died, its retry came due without a task)
is enqueued again, and its due time set to now, so that one sweep after another
does not enqueue it again while the new task waits in line. A task delivered
twice is harmless: the second finds nothing due, or the fence refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Event
from webhooks.processing import claims

#: Events handed out per transaction.
CHUNK = 1000


def sweep(
    hand_out: Callable[[Collection[int]], None], after_seconds: float | None = None
) -> int:
    """Hand every event overdue by ``after_seconds`` to ``hand_out`` (such as
    :func:`webhooks.processing.dispatch.new_work`); how many there were."""
    after = conf.SWEEP_AFTER_SECONDS if after_seconds is None else after_seconds
    total = 0
    while True:
        ids = overdue(after, CHUNK)
        if ids:
            hand_out(ids)
        total += len(ids)
        if len(ids) < CHUNK:
            return total


def overdue(after_seconds: float, limit: int) -> list[int]:
    """Take up to ``limit`` events due for longer than ``after_seconds``, marking them due now."""
    now = timezone.now()
    candidates = claims.due(now - timedelta(seconds=after_seconds))
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            # Rows a batch holds are being run: not lost.
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        ids = list(candidates.values_list("pk", flat=True)[:limit])
        if ids:
            Event.objects.filter(pk__in=ids).update(next_attempt_at=now)
    return ids
