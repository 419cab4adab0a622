"""The live page's server-computed rates, chart points, queue figures, and pausing from it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from realtime import rates
from tests.factories import make_endpoint, make_event
from tests.realtime.test_views import PageAudit, staff_client
from tests.webhooks.ingest.test_views import SECRET, github_headers
from webhooks.models import Endpoint, Event
from webhooks.observability import tallies

pytestmark = pytest.mark.django_db

RATES = reverse("realtime:rates")


def processing_url(slug: str, action: str) -> str:
    return reverse("realtime:endpoint_processing", args=[slug, action])


@pytest.fixture(autouse=True)
def _no_leftover_counts():
    tallies.forget()
    yield
    tallies.forget()


def test_counts_per_endpoint_over_five_minutes_an_hour_and_a_day(
    django_capture_on_commit_callbacks,
) -> None:
    gh = make_endpoint("gh", "github", SECRET)
    quiet = make_endpoint("quiet", "github", SECRET)
    now = time.time()
    for seconds_ago, kind, amount in [
        (10, "received", 3),
        (10, "failed", 1),
        (30 * 60, "received", 5),
        (30 * 60, "rejected", 2),
        (20 * 3600, "received", 7),
        (20 * 3600, "ignored", 4),
        (3 * 86400, "received", 100),  # older than a day: in no window
    ]:
        tallies.count(gh.pk, kind, at=now - seconds_ago, amount=amount)
    client = staff_client("view_event")
    with django_capture_on_commit_callbacks(execute=True):
        body = b'{"a": 1}'
        assert (
            client.post(
                "/webhooks/gh/",
                body,
                content_type="application/json",
                headers=github_headers(body),
            ).status_code
            == 200
        )
    report = client.get(RATES).json()  # the view writes this process's counts first
    by_slug = {row["endpoint"]: row for row in report["endpoints"]}
    assert by_slug["gh"]["counts"] == {
        "5m": {"received": 4, "failed": 1, "rejected": 0, "ignored": 0},
        "1h": {"received": 9, "failed": 1, "rejected": 2, "ignored": 0},
        "1d": {"received": 16, "failed": 1, "rejected": 2, "ignored": 4},
    }
    assert by_slug["quiet"]["counts"]["1d"] == dict.fromkeys(rates.KINDS, 0)
    assert quiet.pk != gh.pk


def test_chart_points_are_per_second_rates_at_fixed_steps() -> None:
    endpoint = make_endpoint("gh", "github", SECRET)
    now = timezone.now()
    minute = rates.this_minute(now)
    tallies.count(endpoint.pk, "received", at=minute.timestamp(), amount=120)
    tallies.count(endpoint.pk, "rejected", at=minute.timestamp(), amount=6)
    tallies.count(
        endpoint.pk,
        "received",
        at=(minute - timedelta(hours=3)).timestamp(),
        amount=900,
    )
    tallies.flush()
    short = rates.series(now, "15m")
    assert len(short) == 15
    assert short[-1]["received"] == 2.0  # 120 in a minute
    assert short[-1]["rejected"] == 0.1
    assert sum(point["count"] for point in short) == 120
    day = rates.series(now, "24h")
    assert len(day) == 96
    assert sum(point["count"] for point in day) == 1020
    assert 1.0 in [point["received"] for point in day]  # 900 in 15 minutes


def test_queue_figures_and_paused_endpoints() -> None:
    endpoint = make_endpoint("gh", "github", SECRET)
    make_event(endpoint, "a", next_attempt_at=timezone.now() - timedelta(minutes=2))
    make_event(endpoint, "b", status=Event.Status.FAILED)
    report = rates.report()
    assert report["queue"]["waiting"] == 1
    assert report["queue"]["dead"] == 1
    assert report["queue"]["lag_seconds"] >= 120
    Endpoint.objects.filter(pk=endpoint.pk).update(
        paused=True, paused_reason="maintenance"
    )
    report = rates.report()
    assert report["queue"]["lag_seconds"] == 0
    assert report["endpoints"][0]["paused"] is True
    assert report["endpoints"][0]["paused_reason"] == "maintenance"


def operator_user(name: str):
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_event", "change_endpoint"])
    )
    return user


def test_the_rates_need_the_view_permission() -> None:
    assert staff_client().get(RATES).status_code == 403
    assert Client().get(RATES).status_code == 302  # to the admin login


def test_the_page_pauses_and_resumes_with_the_change_permission() -> None:
    make_endpoint("gh", "github", SECRET)
    viewer = staff_client("view_event")
    assert viewer.post(processing_url("gh", "pause")).status_code == 403
    operator = Client()
    operator.force_login(operator_user("operator"))
    answer = operator.post(processing_url("gh", "pause")).json()
    assert answer == {
        "endpoint": "gh",
        "paused": True,
        "paused_reason": "paused on the live page by operator",
        "changed": True,
    }
    assert operator.get(processing_url("gh", "pause")).status_code == 405
    assert operator.post(processing_url("nope", "pause")).status_code == 404
    assert operator.post(processing_url("gh", "resume")).json()["paused"] is False
    assert not Endpoint.objects.get().paused


def test_pausing_from_the_page_needs_the_csrf_token() -> None:
    make_endpoint("gh", "github", SECRET)
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user("operator"))
    assert client.post(processing_url("gh", "pause")).status_code == 403
    page = client.get(reverse("realtime:live")).content.decode()
    audit = PageAudit()
    audit.feed(page)
    token = audit.live_root["data-csrf-token"]
    answer = client.post(processing_url("gh", "pause"), headers={"X-CSRFToken": token})
    assert answer.status_code == 200
    assert audit.live_root["data-rates-url"] == RATES
    assert audit.live_root["data-can-pause"] == "true"
    assert audit.inline_scripts == [] and audit.style_attributes == []
