from __future__ import annotations

from django.dispatch import Signal

# All three are sent after the transaction that wrote the row commits, with
# send_robust: a failing receiver is logged and never fails ingest.

#: A new event was stored. Kwargs: ``event`` (the Event).
event_received = Signal()

#: An event's status changed. Kwargs: ``event``, ``previous`` (the old status).
event_status_changed = Signal()

#: A delivery was refused. Kwargs: ``endpoint``, ``reason`` (a reason code such as
#: ``signature_mismatch`` or ``ip_not_allowed``), ``source_ip`` (str or None).
delivery_rejected = Signal()
