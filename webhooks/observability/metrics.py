"""Prometheus metrics of deliveries, processing and dashboards.

With ``prometheus_client`` installed (the ``[metrics]`` extra) and
``WEBHOOKS_METRICS`` left on, the families below live in prometheus_client's
default registry, so django-prometheus (which serves that registry) shows them
too. Everything the rest of the app calls here is a plain function that does
nothing when metrics are off.

Labels are bounded: an endpoint's slug (endpoints are rows an operator
creates; a delivery to an unknown slug is never labelled with it), a provider
id, a reason code, a status. Never a delivery id, an event id or an address.

Under several processes (server workers, ``webhooks_worker``) set
``PROMETHEUS_MULTIPROC_DIR`` in every one of them, as prometheus_client
documents: each writes its own files there and the scrape view adds them up.
Gauges that count something live in a process (waiting commits, dashboard
sockets) are summed over the live processes.
"""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webhooks.conf import conf

if TYPE_CHECKING:
    from webhooks.models import Endpoint, Event

try:
    import prometheus_client
except ImportError:  # the [metrics] extra is not installed
    AVAILABLE = False
else:
    AVAILABLE = True

#: Seconds: from a few hundred microseconds (a verified delivery in the event
#: loop) to the 503 a provider gets when the database is gone.
INGEST_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
#: Seconds a handler run or an event's whole way through takes.
PROCESSING_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    1800.0,
    3600.0,
    6 * 3600.0,
    24 * 3600.0,
)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
ATTEMPT_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20)


@dataclass(frozen=True)
class Families:
    received: Any
    duplicate: Any
    rejected: Any
    ignored: Any
    answered: Any
    commit_batch: Any
    waiting_commits: Any
    handler_runs: Any
    processing: Any
    event_latency: Any
    attempts: Any
    dead: Any
    sockets: Any
    frames_dropped: Any


def _create() -> Families:
    counter, gauge, histogram = (
        prometheus_client.Counter,
        prometheus_client.Gauge,
        prometheus_client.Histogram,
    )
    delivery = ("endpoint", "provider")
    return Families(
        received=counter(
            "webhooks_deliveries_received",
            "Deliveries verified and stored as new events.",
            delivery,
        ),
        duplicate=counter(
            "webhooks_deliveries_duplicate",
            "Deliveries whose (endpoint, delivery id) was stored before.",
            delivery,
        ),
        rejected=counter(
            "webhooks_deliveries_rejected",
            "Deliveries refused (signature, source address, verify token).",
            (*delivery, "reason"),
        ),
        ignored=counter(
            "webhooks_deliveries_ignored",
            "Verified deliveries of an event type outside the endpoint's allowlist.",
            delivery,
        ),
        answered=histogram(
            "webhooks_ingest_seconds",
            "From a delivery's arrival to its answer, by HTTP status.",
            ("status",),
            buckets=INGEST_BUCKETS,
        ),
        commit_batch=histogram(
            "webhooks_commit_batch_size",
            "Deliveries stored by one group commit.",
            buckets=BATCH_BUCKETS,
        ),
        waiting_commits=gauge(
            "webhooks_waiting_commits",
            "Verified deliveries waiting for the group commit.",
            multiprocess_mode="livesum",
        ),
        handler_runs=counter(
            "webhooks_handler_runs",
            "Runs of an event's handlers, by the status they left it in.",
            ("provider", "outcome"),
        ),
        processing=histogram(
            "webhooks_processing_seconds",
            "How long one run of an event's handlers took.",
            ("provider", "outcome"),
            buckets=PROCESSING_BUCKETS,
        ),
        event_latency=histogram(
            "webhooks_event_latency_seconds",
            "From receipt to a final status (succeeded, skipped, failed).",
            ("provider", "status"),
            buckets=PROCESSING_BUCKETS,
        ),
        attempts=histogram(
            "webhooks_event_attempts",
            "Attempts an event took to reach a final status.",
            ("provider", "status"),
            buckets=ATTEMPT_BUCKETS,
        ),
        dead=counter(
            "webhooks_events_dead",
            "Events that reached failed: out of attempts, or unreadable.",
            delivery,
        ),
        sockets=gauge(
            "webhooks_dashboard_sockets",
            "Live-page WebSockets open.",
            multiprocess_mode="livesum",
        ),
        frames_dropped=counter(
            "webhooks_dashboard_frames_dropped",
            "Frames a dashboard socket did not get because it fell too far behind.",
        ),
    )


_families: Families | None = None
_lock = threading.Lock()


def enabled() -> bool:
    return AVAILABLE and conf.METRICS


def families() -> Families | None:
    """The metric families, created on first use; None when metrics are off."""
    global _families
    if not enabled():
        return None
    if _families is not None:
        return _families
    with _lock:
        if _families is None:
            _families = _create()
            _offer_queue_gauges()
            if multiprocess_dir():
                # Live gauges of a process that exits stop counting.
                atexit.register(_mark_dead, os.getpid())
    return _families


_queue_collector: Any = None


def _offer_queue_gauges() -> None:
    """With django-prometheus installed, its scrape URL shows the queue gauges too.

    It serves prometheus_client's default registry (in one process; under
    ``PROMETHEUS_MULTIPROC_DIR`` it reads only the files, so there the queue
    gauges are on this app's own scrape URL alone).
    """
    global _queue_collector
    from django.apps import apps

    if (
        apps.is_installed("django_prometheus")
        and not multiprocess_dir()
        and _queue_collector is None
    ):
        from webhooks.observability.collector import QueueCollector

        _queue_collector = QueueCollector()
        prometheus_client.REGISTRY.register(_queue_collector)


def queue_collector_in_default_registry() -> bool:
    return _queue_collector is not None


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _mark_dead(pid: int) -> None:
    if AVAILABLE and multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _labels(endpoint: Endpoint) -> tuple[str, str]:
    return endpoint.slug, endpoint.provider


# What the app calls. Each returns at once when metrics are off.


def delivery_received(event: Event) -> None:
    if (found := families()) is not None:
        found.received.labels(*_labels(event.endpoint)).inc()


def delivery_duplicate(event: Event) -> None:
    if (found := families()) is not None:
        found.duplicate.labels(*_labels(event.endpoint)).inc()


def delivery_rejected(endpoint: Endpoint, reason: str) -> None:
    if (found := families()) is not None:
        found.rejected.labels(*_labels(endpoint), reason).inc()


def delivery_ignored(endpoint: Endpoint) -> None:
    if (found := families()) is not None:
        found.ignored.labels(*_labels(endpoint)).inc()


def answered(status: int, seconds: float) -> None:
    if (found := families()) is not None:
        found.answered.labels(str(status)).observe(max(seconds, 0.0))


def commit_batch(size: int) -> None:
    if (found := families()) is not None:
        found.commit_batch.observe(size)


def waiting_commits(count: int) -> None:
    if (found := families()) is not None:
        found.waiting_commits.set(count)


def handlers_ran(provider: str, outcome: str, seconds: float | None) -> None:
    """One run of an event's handlers ended; ``seconds`` None when its start was not seen."""
    if (found := families()) is not None:
        found.handler_runs.labels(provider, outcome).inc()
        if seconds is not None:
            found.processing.labels(provider, outcome).observe(max(seconds, 0.0))


def event_finished(event: Event) -> None:
    """An event reached a final status: how long it took and how many attempts."""
    if (found := families()) is None:
        return
    if event.processed_at is not None:
        seconds = (event.processed_at - event.received_at).total_seconds()
        found.event_latency.labels(event.provider, event.status).observe(
            max(seconds, 0.0)
        )
    found.attempts.labels(event.provider, event.status).observe(event.attempts)


def event_dead(event: Event) -> None:
    if (found := families()) is not None:
        found.dead.labels(*_labels(event.endpoint)).inc()


def dashboard_socket_opened() -> None:
    if (found := families()) is not None:
        found.sockets.inc()


def dashboard_socket_closed() -> None:
    if (found := families()) is not None:
        found.sockets.dec()


def dashboard_frames_dropped(count: int = 1) -> None:
    if (found := families()) is not None:
        found.frames_dropped.inc(count)
