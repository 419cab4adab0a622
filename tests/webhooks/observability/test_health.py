"""Queue lag and dead events in /webhooks/health/, and the django-health-check backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from tests.factories import make_endpoint, make_event
from webhooks.models import Event
from webhooks.observability import health_check
from webhooks.observability.health_check import WebhookQueue
from webhooks.processing import pausing

pytestmark = pytest.mark.django_db


def test_health_reports_lag_dead_events_and_paused_endpoints(client) -> None:
    endpoint = make_endpoint("gh", "github")
    make_event(endpoint, "late", next_attempt_at=timezone.now() - timedelta(minutes=5))
    make_event(endpoint, "dead-1", status=Event.Status.FAILED)
    make_event(endpoint, "dead-2", status=Event.Status.FAILED)
    report = client.get("/webhooks/health/").json()
    assert {"database", "channel_layer", "pending", "oldest_pending_seconds"} <= set(
        report
    )
    assert report["queue_lag_seconds"] >= 300
    assert report["dead"] == 2
    assert report["paused_endpoints"] == []
    pausing.pause(endpoint)
    report = client.get("/webhooks/health/").json()
    assert report["paused_endpoints"] == ["gh"]
    assert report["queue_lag_seconds"] == 0
    assert report["pending"] == 1  # still waiting, on purpose


def run(check: WebhookQueue) -> Exception | None:
    try:
        asyncio.run(check.run())
    except Exception as error:
        return error
    return None


@pytest.mark.django_db(transaction=True)
def test_the_health_check_backend_fails_on_lag_and_warns_on_dead_events() -> None:
    endpoint = make_endpoint("gh", "github")
    assert run(WebhookQueue()) is None
    make_event(endpoint, "late", next_attempt_at=timezone.now() - timedelta(minutes=10))
    error = run(WebhookQueue(max_lag_seconds=60))
    assert isinstance(error, ServiceUnavailable)
    assert "the oldest due event has waited" in str(error)
    assert run(WebhookQueue(max_lag_seconds=3600)) is None
    make_event(endpoint, "dead", status=Event.Status.FAILED)
    assert (
        run(WebhookQueue(max_lag_seconds=3600)) is None
    )  # dead events: off by default
    warning = run(WebhookQueue(max_lag_seconds=3600, max_dead=0))
    assert isinstance(warning, ServiceWarning)
    assert "1 dead events" in str(warning)


@pytest.mark.django_db(transaction=True)
def test_the_health_check_backend_is_unavailable_without_its_database(
    monkeypatch,
) -> None:
    def down(self):
        raise DatabaseError("gone")

    monkeypatch.setattr(health_check.WebhookQueue, "measure", down)
    assert isinstance(run(WebhookQueue()), ServiceUnavailable)


@pytest.mark.django_db(transaction=True)
def test_the_backend_runs_in_django_health_checks_own_view(rf) -> None:
    from health_check.views import HealthCheckView

    endpoint = make_endpoint("gh", "github")
    view = HealthCheckView.as_view(
        checks=[
            ("webhooks.observability.health_check.WebhookQueue", {"max_lag_seconds": 1})
        ]
    )
    request = rf.get("/ht/", HTTP_ACCEPT="application/json")
    response = asyncio.run(view(request))
    assert response.status_code == 200, response.content
    make_event(endpoint, "late", next_attempt_at=timezone.now() - timedelta(minutes=10))
    response = asyncio.run(view(rf.get("/ht/", HTTP_ACCEPT="application/json")))
    assert response.status_code == 500
    assert b"WebhookQueue" in response.content
