from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("webhooks")

# All three are sent after the transaction that wrote the row commits, with
# send_robust: a failing receiver is logged and never fails ingest.

#: A new event was stored. Kwargs: ``event`` (the Event).
event_received = Signal()

#: An event's status changed. Kwargs: ``event``, ``previous`` (the old status).
event_status_changed = Signal()

#: A delivery was refused. Kwargs: ``endpoint``, ``reason`` (a reason code such as
#: ``signature_mismatch`` or ``ip_not_allowed``), ``source_ip`` (str or None).
delivery_rejected = Signal()


def send_after_commit(signal: Signal, sender: type, **kwargs: Any) -> None:
    """Send ``signal`` robustly: a failing receiver is logged, the caller carries on.

    Call it from ``transaction.on_commit`` so receivers never see rolled-back rows.
    """
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "Receiver %r of a webhooks signal failed", receiver, exc_info=result
            )
