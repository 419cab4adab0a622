"""Signal receivers that feed the metrics: the app's own signals, no extra calls.

Connected by the app when metrics are on (see :func:`connect`).
"""

from __future__ import annotations

import time
from typing import Any

from webhooks import signals
from webhooks.observability import metrics

FINAL = frozenset({"succeeded", "skipped", "failed"})
#: Claims whose outcome this process has not seen yet (a lease lost to another
#: worker never finishes here): bounded, the oldest forgotten first.
STARTED_KEPT = 10_000

_started: dict[tuple[int, int], float] = {}


def received(sender: type, event: Any, **kwargs: Any) -> None:
    metrics.delivery_received(event)


def rejected(sender: type, endpoint: Any, reason: str, **kwargs: Any) -> None:
    metrics.delivery_rejected(endpoint, reason)


def dead(sender: type, event: Any, **kwargs: Any) -> None:
    metrics.event_dead(event)


def status_changed(sender: type, event: Any, previous: str, **kwargs: Any) -> None:
    key = (event.pk, event.attempts)
    if event.status == "processing":
        if len(_started) >= STARTED_KEPT:
            del _started[next(iter(_started))]
        _started[key] = time.monotonic()
        return
    if previous == "processing":
        started = _started.pop(key, None)
        if (
            event.status != "pending"
        ):  # pending: released unstarted by a stopping worker
            seconds = time.monotonic() - started if started is not None else None
            metrics.handlers_ran(event.provider, event.status, seconds)
    if event.status in FINAL:
        metrics.event_finished(event)


def connect() -> None:
    uid = "webhooks.observability.receivers"
    signals.event_received.connect(received, dispatch_uid=f"{uid}.received")
    signals.delivery_rejected.connect(rejected, dispatch_uid=f"{uid}.rejected")
    signals.event_dead.connect(dead, dispatch_uid=f"{uid}.dead")
    signals.event_status_changed.connect(
        status_changed, dispatch_uid=f"{uid}.status_changed"
    )
