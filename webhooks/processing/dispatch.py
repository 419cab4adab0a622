"""Waking whatever processes events as soon as there is new work.

Inline mode wakes this server process's runner. Worker mode on PostgreSQL
sends a ``NOTIFY`` that every ``webhooks_worker`` is listening for; elsewhere
workers find new work by polling (``WEBHOOKS_POLL_SECONDS``).
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection

from webhooks.conf import conf
from webhooks.processing import inline

logger = logging.getLogger("webhooks")

CHANNEL = "webhooks_events"


def new_work() -> None:
    """Call after the transaction that made an event due has committed."""
    if conf.PROCESSING == "inline":
        inline.runner().wake()
    elif connection.vendor == "postgresql":
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
        except DatabaseError:
            logger.info("Could not notify workers; they will poll", exc_info=True)
