"""The tasks of the ``tasks`` and ``celery`` processing modes.

``process_event`` is a Django task (``django.tasks`` on Django 6, the
``django-tasks`` backport on 5.2) enqueued on ``WEBHOOKS_TASKS_BACKEND``;
``celery_process_event`` (named ``webhooks.process_event``) is the same work as a
Celery shared task, sent through the project's own Celery app. Each carries only
an event id and is only a wake-up: the event row says whether anything is due,
holds the lease and the attempt count, and fences a task delivered twice, which
then runs no handler. Retries are enqueued for their due time where the backend
can defer a task; whatever a broker loses, the sweep hands out again
(``manage.py webhooks_sweep``, the ``sweep`` tasks for a scheduler, or
``webhooks_worker`` in these modes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from webhooks.conf import conf
from webhooks.models import Event
from webhooks.processing import batches, claims
from webhooks.processing import sweep as sweeping
from webhooks.processing.outcomes import Outcome
from webhooks.processing.runner import worker_name

logger = logging.getLogger("webhooks")


def process(event_id: int) -> str | None:
    """Claim the event if it is due, run its handlers and record the outcome.

    Returns its new status, or None when there was nothing to do: the event is
    not due (done, waiting for a retry or for an earlier event of its ordering
    key), another worker holds it, or it does not exist.
    """
    worker = worker_name(conf.PROCESSING)
    claimed = claims.claim_events(1, worker, only=[event_id])
    if not claimed:
        return None
    outcomes = batches.run_batch(claimed)
    follow_up(outcomes)
    return outcomes[0].status if outcomes else None


def follow_up(outcomes: Iterable[Outcome]) -> None:
    """Enqueue what the outcomes made due: retries at their time, the next event of a key."""
    keys = set()
    for outcome in outcomes:
        if outcome.retry_at is not None:
            enqueue([outcome.event.pk], at=outcome.retry_at)
        elif outcome.event.ordering_key:
            keys.add(outcome.event.ordering_key)
    if keys:
        enqueue(next_in_order(keys))


def next_in_order(keys: Collection[str]) -> list[int]:
    """The earliest open event of each ordering key."""
    found = []
    for key in keys:
        first = (
            Event.objects.filter(ordering_key=key, status__in=claims.OPEN)
            .order_by("id")
            .values_list("pk", flat=True)
            .first()
        )
        if first is not None:
            found.append(first)
    return found


def enqueue(ids: Iterable[int], at: datetime | None = None) -> None:
    """One task per event, due at ``at`` (None: now), in the configured mode.

    A task that cannot be sent is logged, never raised: the sweep sends it later.
    """
    try:
        send = _celery_sender(at) if conf.PROCESSING == "celery" else _django_sender(at)
    except Exception:
        # Never raised into a delivery's commit: the events stay due, for the sweep.
        logger.exception("Cannot enqueue events for processing")
        return
    if send is None:
        return
    for event_id in ids:
        try:
            send(event_id)
        except Exception:
            logger.warning(
                "Could not enqueue event %s; the sweep will enqueue it again",
                event_id,
                exc_info=True,
            )


def sweep() -> int:
    """Enqueue again the events whose task was lost; how many (for a periodic task)."""
    return sweeping.sweep(enqueue)


# Django tasks


def _django_task_decorator() -> Callable[..., Any] | None:
    try:
        from django.tasks import task as on_django
    except ImportError:
        try:
            from django_tasks import task as backported
        except ImportError:
            return None
        return backported  # type: ignore[no-any-return,unused-ignore]
    return on_django  # type: ignore[no-any-return,unused-ignore]


_task = _django_task_decorator()


def process_event(event_id: int) -> str | None:
    return process(event_id)


def sweep_events() -> int:
    return sweep()


if _task is not None:
    process_event = _task(backend=conf.TASKS_BACKEND)(process_event)
    sweep_events = _task(backend=conf.TASKS_BACKEND)(sweep_events)


def _django_sender(at: datetime | None) -> Callable[[int], Any] | None:
    if _task is None:
        raise ImproperlyConfigured(
            'WEBHOOKS_PROCESSING = "tasks" needs Django 6 or the django-tasks '
            "package (pip install 'django-webhook-inbox[tasks]')."
        )
    task: Any = process_event
    if at is not None:
        if not task.using(backend=conf.TASKS_BACKEND).get_backend().supports_defer:
            return None  # the sweep enqueues it once it is due
        return task.using(backend=conf.TASKS_BACKEND, run_after=at).enqueue  # type: ignore[no-any-return]
    return task.using(backend=conf.TASKS_BACKEND).enqueue  # type: ignore[no-any-return]


# Celery


def _celery_shared_task() -> Callable[..., Any] | None:
    try:
        from celery import shared_task  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    return shared_task  # type: ignore[no-any-return]


_shared_task = _celery_shared_task()


def celery_process_event(event_id: int) -> str | None:
    return process(event_id)


def celery_sweep() -> int:
    return sweep()


if _shared_task is not None:
    celery_process_event = _shared_task(
        name="webhooks.process_event", ignore_result=True
    )(celery_process_event)
    celery_sweep = _shared_task(name="webhooks.sweep", ignore_result=True)(celery_sweep)


def _celery_sender(at: datetime | None) -> Callable[[int], Any]:
    if _shared_task is None:
        raise ImproperlyConfigured(
            'WEBHOOKS_PROCESSING = "celery" needs Celery '
            "(pip install 'django-webhook-inbox[celery]')."
        )
    task: Any = celery_process_event
    return lambda event_id: task.apply_async((event_id,), eta=at)
