from __future__ import annotations

import os
import time
from pathlib import Path

import webhooks
from tests.workerapp.models import Call
from webhooks.models import Event


@webhooks.handler("none")
def record(event: Event) -> None:
    payload = event.payload or {}
    if payload.get("marker") and event.attempts == 1:
        # Tell the test the handler is running (and where), then stall until killed.
        Path(payload["marker"]).write_text(str(os.getpid()))
        time.sleep(payload.get("sleep", 60))
    Call.objects.create(event_id=event.pk, pid=os.getpid(), attempt=event.attempts)
