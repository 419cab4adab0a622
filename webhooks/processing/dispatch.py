"""Telling whatever runs handlers that events are due, once the transaction that made
them due has committed.

- ``inline``: wakes this server process's runner.
- ``worker``: a PostgreSQL ``NOTIFY`` that every ``webhooks_worker`` listens for;
  elsewhere workers find new work by polling (``WEBHOOKS_POLL_SECONDS``).
- ``tasks`` and ``celery``: one task per event (see :mod:`webhooks.tasks`).

A wake-up that fails loses nothing: the event row stays due, and a worker's poll
or the sweep finds it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from django.db import DatabaseError, connection

from webhooks.conf import conf
from webhooks.processing import inline, sweep

logger = logging.getLogger("webhooks")

CHANNEL = "webhooks_events"
MODES = ("inline", "worker", "tasks", "celery")
#: The modes in which a task per event runs the handlers.
TASK_MODES = ("tasks", "celery")


def new_work(ids: Collection[int] = ()) -> None:
    """Call after the transaction that made the events ``ids`` (or, without ids, any
    events) due has committed."""
    mode = conf.PROCESSING
    if mode == "inline":
        inline.runner().wake()
    elif mode in TASK_MODES:
        # Imported here: the task module needs the task framework in use, and
        # only these modes need it.
        from webhooks import tasks

        if ids:
            tasks.enqueue(ids)
        else:
            # Work made due without naming it (an endpoint resumed): hand out
            # everything due now; a task for an event already in line runs nothing.
            sweep.sweep(tasks.enqueue, after_seconds=0)
    elif connection.vendor == "postgresql":
        notify()


def notify() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
    except DatabaseError:
        logger.info("Could not notify workers; they will poll", exc_info=True)
