"""An endpoint's health: the failure rate of its handler runs over a recent window.

Each processing process keeps the outcomes it saw in the last
``WEBHOOKS_ALERT_WINDOW_SECONDS`` per endpoint, in memory: events are spread
over the processes at random, so each one's rate estimates the endpoint's. The
state (``Endpoint.unhealthy_since``) is shared in the database and changed
only by a conditional UPDATE, so of several processes noticing the same change
exactly one sends the signal. Once past ``WEBHOOKS_ALERT_FAILURE_RATE`` an
endpoint is unhealthy until its rate falls below half of that (hysteresis: an
endpoint hovering at the threshold does not flap).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from django.utils import timezone

from webhooks import signals
from webhooks.conf import conf
from webhooks.models import Endpoint, Event

#: Outcomes that say something about the handlers (skipped says nothing).
JUDGED = frozenset({Event.Status.SUCCEEDED, Event.Status.RETRYING, Event.Status.FAILED})


class Window:
    """One endpoint's recent outcomes, counted per second of arrival.

    A worker draining a backlog records a thousand outcomes a second: counting the
    whole window again for each one cost time in proportion to the window, and
    keeping each outcome cost memory in proportion to it. Per-second counts keep
    both to the window's length in seconds (an outcome leaves up to a second early).
    """

    def __init__(self) -> None:
        self.seconds: deque[list[int]] = deque()  # [second, runs, failures]
        self.runs = 0
        self.failures = 0

    def add(self, now: float, failed: bool, horizon: float) -> tuple[int, float]:
        second = int(now)
        if not self.seconds or self.seconds[-1][0] != second:
            self.seconds.append([second, 0, 0])
        counts = self.seconds[-1]
        counts[1] += 1
        counts[2] += failed
        self.runs += 1
        self.failures += failed
        while len(self.seconds) > 1 and self.seconds[0][0] < horizon:
            _, runs, failures = self.seconds.popleft()
            self.runs -= runs
            self.failures -= failures
        return self.runs, self.failures / self.runs


_windows: dict[int, Window] = {}
_lock = threading.Lock()


def record(
    endpoint_id: int, failed: bool, now: float | None = None
) -> tuple[int, float]:
    """Add an outcome; return the window's size and failure rate."""
    now = time.monotonic() if now is None else now
    with _lock:
        window = _windows.setdefault(endpoint_id, Window())
        return window.add(now, failed, now - conf.ALERT_WINDOW_SECONDS)


def forget() -> None:
    with _lock:
        _windows.clear()


def outcome(sender: type, event: Any, previous: str, **kwargs: Any) -> None:
    """Receiver of ``event_status_changed``: judge the endpoint after each handler run."""
    if previous != Event.Status.PROCESSING or event.status not in JUDGED:
        return
    runs, rate = record(event.endpoint_id, event.status != Event.Status.SUCCEEDED)
    if runs < conf.ALERT_MIN_RUNS:
        return
    endpoint: Endpoint = event.endpoint
    if rate >= conf.ALERT_FAILURE_RATE and endpoint.unhealthy_since is None:
        became_unhealthy(endpoint, rate)
    elif rate < conf.ALERT_FAILURE_RATE / 2 and endpoint.unhealthy_since is not None:
        recovered(endpoint)


def became_unhealthy(endpoint: Endpoint, rate: float) -> bool:
    now = timezone.now()
    changed = Endpoint.objects.filter(
        pk=endpoint.pk, unhealthy_since__isnull=True
    ).update(unhealthy_since=now)
    endpoint.unhealthy_since = now
    if changed:
        signals.send_after_commit(
            signals.endpoint_unhealthy,
            sender=Endpoint,
            endpoint=endpoint,
            failure_rate=round(rate, 4),
        )
    return bool(changed)


def recovered(endpoint: Endpoint) -> bool:
    changed = Endpoint.objects.filter(
        pk=endpoint.pk, unhealthy_since__isnull=False
    ).update(unhealthy_since=None)
    endpoint.unhealthy_since = None
    if changed:
        signals.send_after_commit(
            signals.endpoint_recovered, sender=Endpoint, endpoint=endpoint
        )
    return bool(changed)
