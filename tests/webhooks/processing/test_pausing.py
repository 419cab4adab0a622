"""Pausing an endpoint: deliveries stored and answered, handlers held, resumed in order."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from tests.webhooks.ingest.test_views import SECRET, github_headers
from tests.webhooks.observability.scrape import value
from webhooks.models import Endpoint, Event
from webhooks.processing import batches, claims, handlers, pausing

pytestmark = pytest.mark.django_db


def deliver(client: Client, body: bytes) -> dict:
    response = client.post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body),
    )
    assert response.status_code == 200, response.content
    return response.json()


def run_due() -> list[int]:
    claimed = claims.claim_events(100, "pause-test")
    batches.run_batch(claimed)
    return [event.pk for event in claimed]


def test_a_paused_endpoint_stores_and_answers_and_its_handlers_wait(client) -> None:
    paused = make_endpoint("gh", "github", SECRET)
    other = make_endpoint("other", "github", SECRET)
    ran: list[int] = []

    def record(event: Event) -> None:
        ran.append(event.pk)

    handlers.handler("github", "push")(record)
    try:
        assert pausing.pause(paused, "the shop is migrating")
        answers = [deliver(client, f'{{"n": {n}}}'.encode()) for n in range(3)]
        assert [answer["status"] for answer in answers] == ["received"] * 3
        elsewhere = make_event(other, "elsewhere", next_attempt_at=timezone.now())
        assert run_due() == [elsewhere.pk]  # the paused endpoint's events wait
        assert Event.objects.filter(endpoint=paused, status="pending").count() == 3

        assert pausing.resume(Endpoint.objects.get(slug="gh"))
        assert run_due() == [answer["id"] for answer in answers]  # in order
    finally:
        handlers.unregister(record)
    assert ran == [elsewhere.pk, *(answer["id"] for answer in answers)]


def test_pause_and_resume_say_when_nothing_changed(db) -> None:
    endpoint = make_endpoint("gh", "github", SECRET)
    assert not pausing.resume(endpoint)
    assert pausing.pause(endpoint)
    assert not pausing.pause(endpoint)
    stored = Endpoint.objects.get()
    assert stored.paused and stored.paused_at is not None
    assert stored.paused_reason == "paused by an operator"


def test_paused_events_do_not_count_as_queue_lag(client) -> None:
    endpoint = make_endpoint("gh", "github", SECRET)
    make_event(endpoint, "old", next_attempt_at=timezone.now() - timedelta(hours=1))
    lagging = client.get("/metrics/").content.decode()
    assert value(lagging, "webhooks_queue_lag_seconds") >= 3600
    pausing.pause(endpoint)
    paused = client.get("/metrics/").content.decode()
    assert value(paused, "webhooks_queue_lag_seconds") == 0


def test_the_command_pauses_lists_and_resumes(db) -> None:
    endpoint = make_endpoint("gh", "github", SECRET)
    make_event(endpoint, "waiting", next_attempt_at=timezone.now())

    def run(*args: str) -> str:
        out = StringIO()
        call_command("webhooks_endpoint", *args, stdout=out)
        return out.getvalue()

    assert (
        "paused: deliveries are stored and answered, handlers wait (1 event(s) waiting)"
        in run("pause", "gh", "--reason", "deploying the shop")
    )
    assert Endpoint.objects.get().paused_reason == "deploying the shop"
    assert "active, paused" in run("list")
    assert "was paused already (deploying the shop)" in run("pause", "gh")
    assert "resumed: 1 waiting event(s) run in order" in run("resume", "gh")
    assert "was not paused" in run("resume", "gh")
    assert "active\t" in run("list")


def test_the_admin_pauses_and_resumes_selected_endpoints(client) -> None:
    endpoint = make_endpoint("gh", "github", SECRET)
    admin = User.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    url = "/admin/webhooks/endpoint/"
    response = client.post(
        url,
        {"action": "pause_endpoints", "_selected_action": [endpoint.pk]},
        follow=True,
    )
    assert "Paused 1 endpoint(s)" in response.content.decode()
    assert Endpoint.objects.get().paused_reason == "paused in the admin by boss"
    page = client.get(f"{url}{endpoint.pk}/change/").content.decode()
    assert "paused in the admin by boss" in page
    response = client.post(
        url,
        {"action": "resume_endpoints", "_selected_action": [endpoint.pk]},
        follow=True,
    )
    assert "Resumed 1 endpoint(s)" in response.content.decode()
    assert not Endpoint.objects.get().paused


def test_an_endpoint_pauses_itself_after_failures_in_a_row(
    db, django_capture_on_commit_callbacks
) -> None:
    endpoint = make_endpoint("gh", "github", SECRET, pause_after_failures=3)
    state = {"down": True}

    def fulfil(event: Event) -> None:
        if state["down"]:
            raise ConnectionError("connection refused by shop.example")

    def process(count: int) -> None:
        for _ in range(count):
            make_event(
                endpoint,
                f"d{Event.objects.count()}",
                next_attempt_at=timezone.now(),
            )
            with django_capture_on_commit_callbacks(execute=True):
                claimed = claims.claim_events(1, "pause-test")
            with django_capture_on_commit_callbacks(execute=True):
                batches.run_batch(claimed)

    handlers.handler("github", "push")(fulfil)
    try:
        process(2)
        state["down"] = False
        process(1)  # a success starts the count again
        assert Endpoint.objects.get().consecutive_failures == 0
        state["down"] = True
        process(3)
    finally:
        handlers.unregister(fulfil)
    stored = Endpoint.objects.get()
    assert stored.paused
    assert stored.paused_reason.startswith(
        "paused automatically: 3 handler runs in a row failed (last: builtins.ConnectionError: connection refused by shop.example"
    )
