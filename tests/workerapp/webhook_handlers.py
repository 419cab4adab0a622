from __future__ import annotations

import os
import time
from pathlib import Path

from django.conf import settings

import webhooks
from tests.workerapp.models import Call
from webhooks.models import Event

if settings.WEBHOOKS_PROCESSING == "celery":
    # The project's Celery app is loaded in every process, as a project's
    # __init__ loads it: the server sends tasks through it.
    import tests.workerapp.celery_app  # noqa: F401


@webhooks.handler("none")
def record(event: Event) -> None:
    """Write a Call row, then do what the payload asks: fail, or stall until killed.

    The row is written first, so a run that fails or is killed after it shows
    whether its writes were rolled back with it.
    """
    payload = event.payload or {}
    Call.objects.create(event_id=event.pk, pid=os.getpid(), attempt=event.attempts)
    if event.attempts <= payload.get("fail_times", 0):
        raise ConnectionError(f"upstream down (attempt {event.attempts})")
    if payload.get("marker") and event.attempts == 1:
        # Tell the test the handler is running (and where), then stall until killed.
        Path(payload["marker"]).write_text(str(os.getpid()))
        time.sleep(payload.get("sleep", 60))
