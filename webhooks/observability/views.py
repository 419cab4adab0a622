"""The scrape URL: ``path("metrics/", include("webhooks.observability.urls"))``.

It serves prometheus_client's default registry (or, under
``PROMETHEUS_MULTIPROC_DIR``, every process's files added up) together with
the queue gauges read from the database. ``WEBHOOKS_METRICS_TOKEN``, when set,
is required as ``Authorization: Bearer <token>``; otherwise restrict the URL
where the site is exposed (endpoint slugs appear in labels).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET

from webhooks.conf import conf
from webhooks.observability import metrics
from webhooks.observability.collector import QueueCollector


class _DefaultRegistry:
    """Everything this process registered, as one collector of a per-scrape registry."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client import REGISTRY

        yield from REGISTRY.collect()


def exposition(multiprocess_dir: str | None = None) -> tuple[bytes, str]:
    """The scrape's text and content type."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        generate_latest,
    )

    metrics.families()  # created, so that a scrape before any delivery lists them
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir:
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    else:
        registry.register(_DefaultRegistry())
    if not metrics.queue_collector_in_default_registry():
        registry.register(QueueCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


@login_not_required
@require_GET
def scrape(request: HttpRequest) -> HttpResponse:
    if not metrics.enabled():
        return HttpResponse(
            "Metrics are off: install the [metrics] extra (prometheus_client) "
            "and leave WEBHOOKS_METRICS on.\n",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    token = conf.METRICS_TOKEN
    if token and not constant_time_compare(
        request.headers.get("Authorization", ""), f"Bearer {token}"
    ):
        return HttpResponse(status=401, headers={"WWW-Authenticate": "Bearer"})
    body, content_type = exposition(metrics.multiprocess_dir())
    return HttpResponse(body, content_type=content_type)
