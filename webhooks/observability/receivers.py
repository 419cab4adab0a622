"""Signal receivers that feed the metrics: the app's own signals, no extra calls.

Connected by the app when metrics are on (see :func:`connect`).
"""

from __future__ import annotations

from typing import Any

from webhooks import signals
from webhooks.observability import metrics

FINAL = frozenset({"succeeded", "skipped", "failed"})


def received(sender: type, event: Any, **kwargs: Any) -> None:
    metrics.delivery_received(event)


def rejected(sender: type, endpoint: Any, reason: str, **kwargs: Any) -> None:
    metrics.delivery_rejected(endpoint, reason)


def dead(sender: type, event: Any, **kwargs: Any) -> None:
    metrics.event_dead(event)


def status_changed(sender: type, event: Any, previous: str, **kwargs: Any) -> None:
    if event.status in FINAL and previous != event.status:
        metrics.event_finished(event)


def connect() -> None:
    uid = "webhooks.observability.receivers"
    signals.event_received.connect(received, dispatch_uid=f"{uid}.received")
    signals.delivery_rejected.connect(rejected, dispatch_uid=f"{uid}.rejected")
    signals.event_dead.connect(dead, dispatch_uid=f"{uid}.dead")
    signals.event_status_changed.connect(
        status_changed, dispatch_uid=f"{uid}.status_changed"
    )
