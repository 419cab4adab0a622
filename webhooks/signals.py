from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("webhooks")

# All are sent after the transaction that wrote the row commits, with
# send_robust: a failing receiver is logged and never fails ingest or processing.

#: A new event was stored. Kwargs: ``event`` (the Event).
event_received = Signal()

#: An event's status changed. Kwargs: ``event``, ``previous`` (the old status).
event_status_changed = Signal()

#: A delivery was refused. Kwargs: ``endpoint``, ``reason`` (a reason code such as
#: ``signature_mismatch`` or ``ip_not_allowed``), ``source_ip`` (str or None).
delivery_rejected = Signal()

#: An event reached ``failed``: out of attempts, or a body no handler can read.
#: Kwargs: ``event``.
event_dead = Signal()

#: An endpoint's handlers fail more often than ``WEBHOOKS_ALERT_FAILURE_RATE``.
#: Kwargs: ``endpoint``, ``failure_rate`` (0 to 1). Sent once per episode.
endpoint_unhealthy = Signal()

#: An endpoint sent ``endpoint_unhealthy`` earlier and its failure rate has
#: fallen back below half the threshold. Kwargs: ``endpoint``.
endpoint_recovered = Signal()


def send_after_commit(signal: Signal, sender: type, **kwargs: Any) -> None:
    """Send ``signal`` robustly: a failing receiver is logged, the caller carries on.

    Call it from ``transaction.on_commit`` so receivers never see rolled-back rows.
    """
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "Receiver %r of a webhooks signal failed", receiver, exc_info=result
            )


def announce_dead(sender: type, event: Any, previous: str, **kwargs: Any) -> None:
    """Receiver of ``event_status_changed``: send ``event_dead`` when an event fails for good.

    Already after commit (status changes are announced then), so it sends at once.
    """
    if event.status == "failed" and previous != "failed":
        send_after_commit(event_dead, sender=sender, event=event)
