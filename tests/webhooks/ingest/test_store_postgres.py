"""Guarantees that need a real server database: concurrency and outages."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from django.db import DataError, connection, connections
from django.test import Client, override_settings
from django.utils import timezone

from tests.factories import make_endpoint
from tests.webhooks.ingest.test_breaker import wait_until_closed
from tests.webhooks.ingest.test_loop import post, push, warmed_endpoint
from tests.webhooks.ingest.test_views import github_headers
from webhooks.ingest import committer as committer_module
from webhooks.ingest.inserts import NewEvent
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
    # The failure tripped the breaker; its probe finds the database back.
    wait_until_closed()
    up = Client().post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body),
    )
    assert (down.status_code, up.status_code) == (503, 200)
    assert Event.objects.count() == 1


def new_row(endpoint, delivery_id: str, **values) -> NewEvent:
    row = {
        "endpoint_id": endpoint.pk,
        "provider": endpoint.provider,
        "delivery_id": delivery_id,
        "event_type": "push",
        "body": b"{}",
        "size": 2,
        "headers": {},
        "source_ip": "127.0.0.1",
        "payload": {},
        "received_at": timezone.now(),
        "status": Event.Status.PENDING,
        "next_attempt_at": timezone.now(),
        "ordering_key": "",
        "trace_parent": "",
        **values,
    }
    return NewEvent(row, endpoint)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("async_db_connections")
async def test_a_row_the_database_refuses_fails_only_its_own_delivery() -> None:
    # One statement for the batch: the refused value fails it, then each row
    # goes alone, so that only that delivery is refused.
    endpoint = await sync_to_async(make_endpoint)("gh", "github", "s3cret")
    rows = [
        new_row(endpoint, "a"),
        new_row(endpoint, "b", source_ip="not an address"),
        new_row(endpoint, "c"),
        new_row(endpoint, "a"),
    ]
    loop_committer = committer_module.LoopCommitter(
        committer_module.committer, "default"
    )
    try:
        outcomes, _ = await loop_committer.commit(rows)
    finally:
        await loop_committer.close()
    assert isinstance(outcomes[1], DataError)
    assert [outcomes[0][1], outcomes[2][1], outcomes[3]] == [
        True,
        True,
        (outcomes[0][0], False),
    ]
    assert {e async for e in Event.objects.values_list("delivery_id", flat=True)} == {
        "a",
        "c",
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("async_db_connections")
async def test_the_committer_replaces_a_connection_the_database_closed() -> None:
    await warmed_endpoint()
    body = push(1)
    assert (await post(body, github_headers(body, "s3cret")))[0] == 200

    @sync_to_async
    def end_other_sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(cursor.fetchone()[0])

    stored = await Event.objects.acount()
    assert await end_other_sessions() >= 1
    statuses = []
    for n in (2, 3):
        body = push(n)
        statuses.append((await post(body, github_headers(body, "s3cret")))[0])
    # The batch on the closed connection fails (503, its provider retries);
    # the next one is stored on a new connection.
    assert statuses in ([503, 200], [200, 200])
    assert await Event.objects.acount() == stored + statuses.count(200)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("async_db_connections")
@override_settings(WEBHOOKS_PROCESSING="worker")
async def test_in_worker_mode_the_batch_statement_notifies_the_workers() -> None:
    import psycopg

    from webhooks.processing.dispatch import CHANNEL

    await warmed_endpoint()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    async with await psycopg.AsyncConnection.connect(
        **params, autocommit=True
    ) as listener:
        await listener.execute(f"LISTEN {CHANNEL}")
        body = push(4)
        status, answer = await post(body, github_headers(body, "s3cret"))
        assert status == 200
        received = [n async for n in listener.notifies(timeout=10, stop_after=1)]
    assert [n.channel for n in received] == [CHANNEL]
