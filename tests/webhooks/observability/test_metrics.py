"""Metrics as Prometheus scrapes them: real deliveries, real processing, a real text scrape."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import django
import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from tests.webhooks.ingest.test_views import SECRET, github_headers
from tests.webhooks.observability.scrape import families, samples, value
from webhooks.models import Event
from webhooks.observability import metrics
from webhooks.processing import batches, claims, handlers

pytestmark = pytest.mark.django_db

GH = {"endpoint": "gh", "provider": "github"}


def scrape(client: Client, **headers: str) -> str:
    response = client.get("/metrics/", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def deliver(client: Client, body: bytes, **headers: str):
    return client.post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers={**github_headers(body), **headers},
    )


@pytest.fixture
def endpoint(db):
    return make_endpoint("gh", "github", SECRET)


def test_scrape_lists_every_family_before_any_delivery(client) -> None:
    found = families(scrape(client))
    assert found == {
        **found,
        "webhooks_deliveries_received": "counter",
        "webhooks_deliveries_duplicate": "counter",
        "webhooks_deliveries_rejected": "counter",
        "webhooks_deliveries_ignored": "counter",
        "webhooks_ingest_seconds": "histogram",
        "webhooks_commit_batch_size": "histogram",
        "webhooks_waiting_commits": "gauge",
        "webhooks_handler_runs": "counter",
        "webhooks_processing_seconds": "histogram",
        "webhooks_event_latency_seconds": "histogram",
        "webhooks_event_attempts": "histogram",
        "webhooks_events_dead": "counter",
        "webhooks_dashboard_sockets": "gauge",
        "webhooks_dashboard_frames_dropped": "counter",
        "webhooks_events": "gauge",
        "webhooks_queue_lag_seconds": "gauge",
        "webhooks_dead_events": "gauge",
    }


def test_received_duplicate_and_rejected_deliveries_are_counted_by_endpoint(
    client, endpoint, django_capture_on_commit_callbacks
) -> None:
    before = scrape(client)
    body = b'{"zen": "Design for failure."}'
    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(client, body, **{"X-GitHub-Delivery": "one"})
        again = deliver(client, body, **{"X-GitHub-Delivery": "one"})
        forged = client.post(
            "/webhooks/gh/",
            body,
            content_type="application/json",
            headers=github_headers(body, secret="not the secret"),
        )
    assert [first.status_code, again.status_code, forged.status_code] == [200, 200, 401]
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("webhooks_deliveries_received_total", **GH) == 1
    assert grew("webhooks_deliveries_duplicate_total", **GH) == 1
    assert (
        grew("webhooks_deliveries_rejected_total", **GH, reason="signature_mismatch")
        == 1
    )
    assert grew("webhooks_ingest_seconds_count", status="200") == 2
    assert grew("webhooks_ingest_seconds_count", status="401") == 1
    assert grew("webhooks_ingest_seconds_bucket", status="401", le="+Inf") == 1


def test_an_unknown_slug_never_becomes_a_label(client, endpoint) -> None:
    response = client.post(
        "/webhooks/made-up-by-a-scanner/", b"{}", content_type="application/json"
    )
    assert response.status_code == 404
    text = scrape(client)
    assert "made-up-by-a-scanner" not in text
    assert value(text, "webhooks_ingest_seconds_count", status="404") >= 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_group_commit_reports_its_batch_sizes_and_waiting_deliveries(
    async_db_connections,
) -> None:
    from asgiref.sync import sync_to_async
    from channels.testing import HttpCommunicator

    from tests.asgi import application
    from tests.webhooks.ingest.test_asgi import asgi_headers

    await sync_to_async(make_endpoint)("gh", "github", SECRET)

    async def post(number: int) -> int:
        body = f'{{"n": {number}}}'.encode()
        communicator = HttpCommunicator(
            application,
            "POST",
            "/webhooks/gh/",
            body=body,
            headers=asgi_headers(github_headers(body), body),
        )
        response = await communicator.get_response()
        await communicator.wait()
        return int(response["status"])

    # The first delivery makes the process keep the endpoint; from then on
    # verified deliveries go to the group commit.
    assert await post(0) == 200
    before = await sync_to_async(scrape)(Client())
    assert await asyncio.gather(*(post(n) for n in range(1, 13))) == [200] * 12
    after = await sync_to_async(scrape)(Client())
    batches = value(after, "webhooks_commit_batch_size_count") - value(
        before, "webhooks_commit_batch_size_count"
    )
    stored = value(after, "webhooks_commit_batch_size_sum") - value(
        before, "webhooks_commit_batch_size_sum"
    )
    assert stored == 12
    assert 1 <= batches <= 12
    assert value(after, "webhooks_waiting_commits") == 0
    assert await Event.objects.acount() == 13


def test_processing_counts_runs_attempts_dead_events_and_the_queue(
    client, endpoint, django_capture_on_commit_callbacks
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("the shop is down")

    def fine(event: Event) -> None:
        pass

    handlers.handler("github", "push")(broken)
    handlers.handler("github", "ping")(fine)
    try:
        long_ago = timezone.now() - timedelta(minutes=10)
        make_event(endpoint, "fails", event_type="push", next_attempt_at=long_ago)
        make_event(endpoint, "works", event_type="ping", next_attempt_at=long_ago)
        make_event(endpoint, "nobody", event_type="star", next_attempt_at=long_ago)
        waiting = scrape(client)
        assert value(waiting, "webhooks_events", status="pending") == 3
        assert value(waiting, "webhooks_queue_lag_seconds") >= 600
        before = waiting
        # Each step's announcements go out as its commit would send them.
        with django_capture_on_commit_callbacks(execute=True):
            claimed = claims.claim_events(10, "metrics-test")
        with override_settings(WEBHOOKS_MAX_ATTEMPTS=1):
            for event in claimed:
                with django_capture_on_commit_callbacks(execute=True):
                    batches.run_claimed(event)
        after = scrape(client)
    finally:
        handlers.unregister(broken)
        handlers.unregister(fine)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    for outcome in ("failed", "succeeded", "skipped"):
        assert (
            grew("webhooks_handler_runs_total", provider="github", outcome=outcome) == 1
        )
        assert (
            grew(
                "webhooks_processing_seconds_count", provider="github", outcome=outcome
            )
            == 1
        )
        assert (
            grew(
                "webhooks_event_attempts_bucket",
                provider="github",
                status=outcome,
                le="1.0",
            )
            == 1
        )
        assert (
            grew(
                "webhooks_event_latency_seconds_bucket",
                provider="github",
                status=outcome,
                le="+Inf",
            )
            == 1
        )
    assert grew("webhooks_events_dead_total", **GH) == 1
    assert value(after, "webhooks_dead_events") == 1
    assert value(after, "webhooks_events", status="pending") == 0
    assert value(after, "webhooks_events", status="failed") == 1
    assert value(after, "webhooks_queue_lag_seconds") == 0


def test_a_retry_that_is_due_later_adds_no_lag(client, endpoint) -> None:
    make_event(
        endpoint,
        status=Event.Status.RETRYING,
        next_attempt_at=timezone.now() + timedelta(minutes=5),
    )
    text = scrape(client)
    assert value(text, "webhooks_events", status="retrying") == 1
    assert value(text, "webhooks_queue_lag_seconds") == 0


@override_settings(WEBHOOKS_METRICS_TOKEN="scrape-me")
def test_a_token_guards_the_scrape_when_set(client) -> None:
    assert client.get("/metrics/").status_code == 401
    assert (
        client.get("/metrics/", headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )
    assert "webhooks_events" in scrape(client, Authorization="Bearer scrape-me")


@override_settings(WEBHOOKS_METRICS=False)
def test_metrics_off_serves_nothing_and_records_nothing(client, endpoint) -> None:
    assert client.get("/metrics/").status_code == 404
    assert metrics.families() is None
    metrics.answered(200, 0.1)  # a no-op, not an error


def test_a_failing_database_leaves_the_queue_gauges_out_not_the_scrape(
    client, monkeypatch
) -> None:
    from django.db import DatabaseError

    from webhooks.observability import collector

    def down() -> dict[str, int]:
        raise DatabaseError("connection refused")

    monkeypatch.setattr(collector, "events_by_status", down)
    text = scrape(client)
    assert "webhooks_queue_lag_seconds" not in families(text)
    assert "webhooks_deliveries_received" in families(text)
    assert samples(text)


def test_the_families_live_in_the_default_registry_that_django_prometheus_serves(
    client, endpoint, django_capture_on_commit_callbacks
) -> None:
    from prometheus_client import REGISTRY, generate_latest

    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, b'{"a": 1}').status_code == 200
    text = generate_latest(REGISTRY).decode()
    assert value(text, "webhooks_deliveries_received_total", **GH) >= 1


ABSENT = """
import sys
sys.modules["prometheus_client"] = None  # as if the [metrics] extra were not installed
import django
django.setup()
from django.db import connection
from django.core.management import call_command
call_command("migrate", verbosity=0, run_syncdb=True)
from django.test import Client
from tests.factories import make_endpoint
from tests.webhooks.ingest.test_views import SECRET, github_headers
from webhooks.observability import metrics
make_endpoint("gh", "github", SECRET)
body = b'{"a": 1}'
client = Client()
answer = client.post("/webhooks/gh/", body, content_type="application/json",
                     headers=github_headers(body))
assert answer.status_code == 200, answer.content
assert not metrics.enabled() and metrics.families() is None
assert client.get("/metrics/").status_code == 404
assert "prometheus_client" not in [m for m in sys.modules if sys.modules[m] is not None]
print("ok")
"""


def test_without_the_extra_deliveries_work_and_nothing_is_registered() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", ABSENT],
        cwd=root,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


# django-prometheus 2.5 (the newest) supports Django below 6.1 only: the test group
# installs it on the Django 5.2 lane, where this test runs.
@pytest.mark.skipif(
    django.VERSION >= (6, 1), reason="django-prometheus needs Django < 6.1"
)
def test_django_prometheus_scrape_shows_the_families_and_the_queue_gauges(
    endpoint, rf
) -> None:
    from django_prometheus.exports import ExportToDjangoView
    from prometheus_client import REGISTRY

    make_event(
        endpoint, "waiting", next_attempt_at=timezone.now() - timedelta(minutes=3)
    )
    with override_settings(
        INSTALLED_APPS=[*settings.INSTALLED_APPS, "django_prometheus"]
    ):
        metrics._offer_queue_gauges()
    try:
        assert metrics.queue_collector_in_default_registry()
        text = ExportToDjangoView(rf.get("/metrics")).content.decode()
        assert value(text, "webhooks_events", status="pending") == 1
        assert value(text, "webhooks_queue_lag_seconds") >= 180
        assert "webhooks_deliveries_received" in families(text)
        # Our own scrape does not list the queue gauges twice.
        ours = Client().get("/metrics/").content.decode()
        assert ours.count("# TYPE webhooks_queue_lag_seconds gauge") == 1
    finally:
        REGISTRY.unregister(metrics._queue_collector)
        metrics._queue_collector = None
