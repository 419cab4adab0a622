"""Retention by default: what the settings prune, in batches, by command and by the worker."""

from __future__ import annotations

import signal
from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from webhooks.models import Attempt, Event, Rejection
from webhooks.processing import retention


def aged(endpoint, delivery_id: str, status: str, days: float) -> Event:
    return make_event(
        endpoint,
        delivery_id,
        status=status,
        received_at=timezone.now() - timedelta(days=days),
    )


def remaining() -> set[str]:
    return set(Event.objects.values_list("delivery_id", flat=True))


@pytest.fixture
def store(db):
    endpoint = make_endpoint()
    for status in Event.Status.values:
        for days in (1, 31, 91):
            event = aged(endpoint, f"{status}-{days}", status, days)
            Attempt.objects.create(event=event, number=1, outcome="failed")
    for days in (1, 31):
        Rejection.objects.create(
            endpoint=endpoint,
            reason="signature_mismatch",
            body_head=b"",
            at=timezone.now() - timedelta(days=days),
        )
    return endpoint


def test_by_default_finished_events_go_after_30_days_and_failed_ones_after_90(
    store,
) -> None:
    pruned = retention.prune()
    kept_by_age = {f"{s}-{d}" for s in Event.Status.values for d in (1, 31, 91)} - {
        "succeeded-31",
        "succeeded-91",
        "skipped-31",
        "skipped-91",
        "failed-91",
    }
    assert remaining() == kept_by_age
    assert (pruned.events, pruned.attempts, pruned.rejections) == (5, 5, 1)
    assert Attempt.objects.count() == len(kept_by_age)
    assert Rejection.objects.count() == 1


@override_settings(WEBHOOKS_RETENTION_DAYS=None, WEBHOOKS_FAILED_RETENTION_DAYS=None)
def test_retention_settings_of_none_keep_everything(store) -> None:
    before = remaining()
    assert retention.prune().events == 0
    assert remaining() == before


@override_settings(WEBHOOKS_RETENTION_DAYS=10, WEBHOOKS_FAILED_RETENTION_DAYS=30)
def test_the_ages_come_from_the_settings(store) -> None:
    retention.prune()
    assert "failed-31" not in remaining()
    assert "failed-1" in remaining()


def test_each_batch_is_its_own_short_transaction_of_few_queries(store) -> None:
    with CaptureQueriesContext(connection) as captured:
        pruned = retention.prune(batch_size=2)
    assert pruned.events == 5
    # Four finished events in two batches, one failed, one rejection.
    assert pruned.batches == 4
    # Per batch: choose ids, lock those still due, delete attempts, delete rows (and a
    # savepoint around them here, inside the test's transaction); then one empty
    # look per kind of row, and one delete of old tallies. No statement reads a body.
    statements = [q["sql"] for q in captured if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 4 * 3 + 2 + 3 + 1, statements
    assert not any('"body"' in sql for sql in statements)
    assert not any('"body"' in query["sql"] for query in captured)


def test_the_command_without_an_age_applies_the_settings(store) -> None:
    out = StringIO()
    call_command("webhooks_prune", "--dry-run", stdout=out)
    assert "Would delete 4 succeeded/skipped event(s)" in out.getvalue()
    assert "Would delete 1 failed event(s)" in out.getvalue()
    assert len(remaining()) == 18
    out = StringIO()
    call_command("webhooks_prune", stdout=out)
    assert "Deleted 4 succeeded/skipped event(s)" in out.getvalue()
    assert "Deleted 1 failed event(s)" in out.getvalue()
    assert "Deleted 1 rejection(s)." in out.getvalue()
    assert len(remaining()) == 13


def test_the_command_refuses_a_status_without_an_age(store) -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--status needs --older-than"):
        call_command("webhooks_prune", "--status", "failed")


def test_a_scheduled_round_prunes_and_survives_a_database_error(
    store, monkeypatch
) -> None:
    schedule = retention.Schedule(stopping=None)  # type: ignore[arg-type]
    pruned = schedule.run_once()
    assert pruned is not None
    assert pruned.events == 5

    from django.db import DatabaseError

    def down(*args, **kwargs):
        raise DatabaseError("gone")

    monkeypatch.setattr(retention, "prune", down)
    assert schedule.run_once() is None
    assert schedule.rounds == 1


@pytest.mark.postgres
def test_one_process_at_a_time_prunes_on_postgresql(store) -> None:
    params = connection.get_connection_params()
    params.pop("pool", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [retention.LOCK_KEY])
        assert retention.Schedule(stopping=None).run_once() is None  # type: ignore[arg-type]
        assert len(remaining()) == 18
        other.execute("SELECT pg_advisory_unlock(%s)", [retention.LOCK_KEY])
    assert retention.Schedule(stopping=None).run_once() is not None  # type: ignore[arg-type]
    assert len(remaining()) == 13


OLD_EVENTS = """
from datetime import timedelta
from django.utils import timezone
from webhooks.models import Endpoint, Event
endpoint = Endpoint.objects.create(slug="old", provider="none")
long_ago = timezone.now() - timedelta(days=45)
for n, status in enumerate(["succeeded", "skipped", "failed", "succeeded"]):
    Event.objects.create(endpoint=endpoint, provider="none", delivery_id=f"d{n}",
                         body=b"{}", payload={}, status=status, received_at=long_ago)
"""


@pytest.mark.postgres
def test_a_running_worker_prunes_on_its_schedule() -> None:
    from tests.servers import Postgres, Project
    from tests.webhooks.processing.test_workers import query, wait_until

    database = Postgres()
    database.create()
    try:
        project = Project(
            database.url,
            None,
            settings="tests.settings_prune",
        )
        project.manage("migrate", "--run-syncdb", "--verbosity", "0")
        project.manage("shell", "-c", OLD_EVENTS)
        worker = project.worker("--concurrency", "1")
        try:
            wait_until(
                lambda: (
                    query(database, "SELECT count(*) FROM webhooks_event")[0][0] == 1
                ),
                timeout=60,
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            _, errors = worker.communicate(timeout=60)
        statuses = query(database, "SELECT status FROM webhooks_event")
    finally:
        database.drop()
    assert statuses == [("failed",)], errors
    assert worker.returncode == 0, errors


def test_projects_whose_models_refer_to_events_get_djangos_delete(
    store, monkeypatch
) -> None:
    # Django's delete honours their on_delete; the result is the same here.
    monkeypatch.setattr(retention, "only_attempts_refer_to_events", lambda: False)
    pruned = retention.prune(batch_size=2)
    assert (pruned.events, pruned.attempts, pruned.rejections) == (5, 5, 1)
    assert len(remaining()) == 13


def test_the_plain_statements_are_chosen_when_only_attempts_refer_to_events() -> None:
    assert retention.only_attempts_refer_to_events()


def test_the_live_pages_tallies_are_kept_two_days(store) -> None:
    from webhooks.models import Tally

    now = timezone.now().replace(second=0, microsecond=0)
    for days in (1, 3):
        Tally.objects.create(
            endpoint=store, minute=now - timedelta(days=days), received=1
        )
    retention.prune()
    assert list(Tally.objects.values_list("minute", flat=True)) == [
        now - timedelta(days=1)
    ]
