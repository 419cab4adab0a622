"""Guarantees that need a real server database: concurrency and outages."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.test import Client

from tests.factories import make_endpoint
from tests.webhooks.ingest.test_views import github_headers
from webhooks.models import Event

pytestmark = pytest.mark.postgres


@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_one_delivery_make_exactly_one_row() -> None:
    make_endpoint("gh", "github", "s3cret")
    body = b'{"action": "opened"}'
    headers = github_headers(body)
    copies = 50
    barrier = threading.Barrier(copies)

    def deliver(_: int) -> tuple[int, dict]:
        try:
            barrier.wait(timeout=30)
            response = Client().post(
                "/webhooks/gh/", body, content_type="application/json", headers=headers
            )
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=copies) as pool:
        answers = list(pool.map(deliver, range(copies)))

    assert Event.objects.count() == 1
    event_id = Event.objects.get().pk
    assert {status for status, _ in answers} == {200}
    assert all(answer["id"] == event_id for _, answer in answers)
    assert sorted(answer["status"] for _, answer in answers).count("received") == 1


@pytest.fixture
def database_down():
    """Point the connection at a port where nothing listens, as if PostgreSQL had stopped."""
    settings_dict = connections["default"].settings_dict
    original = settings_dict["PORT"]
    connections["default"].close()
    settings_dict["PORT"] = "1"
    yield
    connections["default"].close()
    settings_dict["PORT"] = original


@pytest.mark.django_db(transaction=True)
def test_database_down_answers_503_and_never_2xx(database_down) -> None:
    body = b"{}"
    response = Client().post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body),
    )
    assert response.status_code == 503
    assert response.json() == {"error": "unavailable"}
    assert response["Retry-After"] == "30"


@pytest.mark.django_db(transaction=True)
def test_health_reports_database_error_with_503(database_down) -> None:
    response = Client().get("/webhooks/health/")
    assert response.status_code == 503
    assert response.json()["database"] == "error"


@pytest.mark.django_db(transaction=True)
def test_ingest_recovers_when_the_database_returns() -> None:
    make_endpoint("gh", "github", "s3cret")
    settings_dict = connections["default"].settings_dict
    original = settings_dict["PORT"]
    body = b'{"n": 1}'
    connections["default"].close()
    settings_dict["PORT"] = "1"
    try:
        down = Client().post(
            "/webhooks/gh/",
            body,
            content_type="application/json",
            headers=github_headers(body),
        )
    finally:
        connections["default"].close()
        settings_dict["PORT"] = original
    up = Client().post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body),
    )
    assert (down.status_code, up.status_code) == (503, 200)
    assert Event.objects.count() == 1
