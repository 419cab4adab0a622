"""The seam between ``webhooks`` and the dashboards: signals in, channel-layer messages out.

``webhooks`` never imports this module; ``RealtimeConfig.ready()`` connects
these receivers to its signals. A broadcast is best effort by design: the page
resynchronises from the database (``resume``), so a message the layer drops
costs a round trip, never an event. What must not happen is a slow or broken
layer holding up ingest, so every send is bounded by
``REALTIME_SEND_TIMEOUT_SECONDS`` and failures are logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.utils import timezone

from realtime import hub
from realtime.conf import conf
from realtime.wire import event_summary, message, rejection_summary
from webhooks import signals
from webhooks.models import Endpoint, Event

logger = logging.getLogger("realtime")

#: Channel-layer message type the hubs receive (dispatched to ``Hub``).
HUB_MESSAGE = "hub.publish"

#: Broadcasts sent and failed in this process, for health and the benchmarks.
stats: Counter[str] = Counter()


def connect() -> None:
    signals.event_received.connect(on_event_received, dispatch_uid="realtime.received")
    signals.event_status_changed.connect(
        on_status_changed, dispatch_uid="realtime.status"
    )
    signals.delivery_rejected.connect(
        on_delivery_rejected, dispatch_uid="realtime.rejected"
    )


def on_event_received(sender: Any, event: Event, **kwargs: Any) -> None:
    publish(message("event.received", event=event_summary(event)))


def on_status_changed(sender: Any, event: Event, **kwargs: Any) -> None:
    publish(message("event.updated", event=event_summary(event)))


def on_delivery_rejected(
    sender: Any, endpoint: Endpoint, reason: str, source_ip: str | None, **kwargs: Any
) -> None:
    rejection = rejection_summary(endpoint, reason, source_ip, timezone.now())
    publish(message("delivery.rejected", rejection=rejection))


def publish(payload: dict[str, Any]) -> None:
    """Send one dashboard message to every server process's hub, within the bound.

    This process's hubs get it at once, from whatever thread (no channel layer,
    no thread hop from their own loop). The layer carries it to other processes;
    the in-memory one reaches none, so it is not used. The layer's send runs in
    an event loop (the caller's, else this process's hub's) as a task, within
    ``REALTIME_SEND_TIMEOUT_SECONDS``; only a process without a hub (a worker)
    waits for it.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    reached = hub.deliver_here(payload)
    if isinstance(layer, InMemoryChannelLayer):
        if reached:
            stats["sent"] += 1
        return
    envelope = {"type": HUB_MESSAGE, "message": payload}
    if reached:
        envelope["origin"] = hub.PROCESS
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        # A thread of a server process: the send goes to its hub's loop, whose
        # connections to the layer stay open, and the thread carries on at once
        # (async_to_sync would open a connection per message, and the local
        # hubs' next messages would wait behind it).
        loop = hub.running_loop()
    if loop is not None:
        try:
            loop.call_soon_threadsafe(_start_send, layer, envelope)
        except RuntimeError:
            pass  # that loop has just closed
        else:
            return
    # No hub in this process (a worker): wait for the send here.
    try:
        async_to_sync(_send)(layer, envelope)
    except Exception:
        _failed()
    else:
        stats["sent"] += 1


def _start_send(layer: BaseChannelLayer, envelope: dict[str, Any]) -> None:
    task = asyncio.get_running_loop().create_task(_send(layer, envelope))
    _sending.add(task)
    task.add_done_callback(_sent)


#: Layer sends under way from an event loop; the loop keeps only weak references.
_sending: set[asyncio.Task[None]] = set()


def _sent(task: asyncio.Task[None]) -> None:
    _sending.discard(task)
    if task.cancelled() or task.exception() is not None:
        _failed(task.exception() if not task.cancelled() else None)
    else:
        stats["sent"] += 1


def _failed(error: BaseException | None = None) -> None:
    stats["failed"] += 1
    logger.warning(
        "Dashboard broadcast dropped", exc_info=error if error is not None else True
    )


async def _send(layer: BaseChannelLayer, envelope: dict[str, Any]) -> None:
    async with asyncio.timeout(conf.SEND_TIMEOUT_SECONDS):
        await layer.group_send(conf.GROUP, envelope)
