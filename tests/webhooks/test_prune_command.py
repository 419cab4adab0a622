from __future__ import annotations

import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from webhooks.models import Attempt, Event, Rejection


def run(*args: str) -> str:
    out = StringIO()
    call_command("webhooks_prune", *args, stdout=out)
    return out.getvalue()


def aged(endpoint, delivery_id, status, days=40, **fields) -> Event:
    received = timezone.now() - timedelta(days=days)
    return make_event(
        endpoint, delivery_id, status=status, received_at=received, **fields
    )


def remaining() -> set[str]:
    return set(Event.objects.values_list("delivery_id", flat=True))


@pytest.mark.django_db
def test_prune_by_default_deletes_old_succeeded_and_skipped_only() -> None:
    endpoint = make_endpoint()
    for status in Event.Status.values:
        aged(endpoint, f"old-{status}", status)
        aged(endpoint, f"new-{status}", status, days=1)

    output = run("--older-than", "30d")

    assert remaining() == {f"new-{s}" for s in Event.Status.values} | {
        "old-pending", "old-processing", "old-retrying", "old-failed",
    }  # fmt: skip
    assert "Deleted 2 succeeded/skipped event(s) received before" in output


@pytest.mark.django_db
def test_prune_takes_the_attempts_of_deleted_events_with_them() -> None:
    endpoint = make_endpoint()
    gone = aged(endpoint, "gone", Event.Status.SUCCEEDED)
    kept = aged(endpoint, "kept", Event.Status.FAILED)
    for event in (gone, kept):
        Attempt.objects.create(event=event, number=1, outcome="failed")
        Attempt.objects.create(event=event, number=2, outcome=event.status)

    output = run("--older-than", "30d")

    assert list(Attempt.objects.values_list("event_id", flat=True)) == [kept.pk] * 2
    assert "with 2 attempt(s)" in output


@pytest.mark.django_db
def test_prune_status_failed_deletes_failed_and_keeps_succeeded() -> None:
    endpoint = make_endpoint()
    aged(endpoint, "failed", Event.Status.FAILED)
    aged(endpoint, "succeeded", Event.Status.SUCCEEDED)

    run("--older-than", "30d", "--status", "failed")

    assert remaining() == {"succeeded"}


@pytest.mark.django_db
def test_prune_status_is_repeatable() -> None:
    endpoint = make_endpoint()
    for status in ("failed", "succeeded", "skipped"):
        aged(endpoint, status, status)

    run("--older-than", "30d", "--status", "failed", "--status", "skipped")

    assert remaining() == {"succeeded"}


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["pending", "processing", "retrying"])
def test_prune_live_statuses_are_refused_without_force(status) -> None:
    aged(make_endpoint(), "live", status)

    with pytest.raises(CommandError, match="--force"):
        run("--older-than", "30d", "--status", status)

    assert remaining() == {"live"}


@pytest.mark.django_db
def test_prune_live_status_with_force_deletes_it() -> None:
    aged(make_endpoint(), "stuck", Event.Status.PENDING)

    run("--older-than", "30d", "--status", "pending", "--force")

    assert remaining() == set()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("age", "deleted"),
    [("30d", False), ("12h", True), ("90m", True), ("3600s", True)],
)
def test_prune_durations_in_days_hours_minutes_and_seconds(age, deleted) -> None:
    aged(make_endpoint(), "two-days", Event.Status.SUCCEEDED, days=2)

    run("--older-than", age)

    assert remaining() == (set() if deleted else {"two-days"})


@pytest.mark.django_db
@pytest.mark.parametrize("age", ["30", "30w", "d", "-1d", "0d", "1.5h", "30 d"])
def test_prune_bad_duration_is_a_clear_command_error(age) -> None:
    with pytest.raises(CommandError, match="30d, 12h, 90m or 3600s"):
        run(f"--older-than={age}")


@pytest.mark.django_db
def test_prune_bad_batch_size_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="at least 1"):
        run("--older-than", "30d", "--batch-size", "0")


@pytest.mark.django_db
def test_prune_dry_run_counts_and_deletes_nothing() -> None:
    endpoint = make_endpoint()
    event = aged(endpoint, "old", Event.Status.SUCCEEDED)
    Attempt.objects.create(event=event, number=1, outcome="succeeded")
    aged(endpoint, "recent", Event.Status.SUCCEEDED, days=1)
    Rejection.objects.create(
        endpoint=endpoint, reason="signature_mismatch", at=event.received_at
    )

    output = run("--older-than", "30d", "--dry-run")

    assert "Would delete 1 succeeded/skipped event(s)" in output
    assert "with 1 attempt(s), and 1 rejection(s)" in output
    assert remaining() == {"old", "recent"}
    assert (Attempt.objects.count(), Rejection.objects.count()) == (1, 1)


@pytest.mark.django_db
def test_prune_deletes_old_rejections_and_keeps_recent_ones() -> None:
    endpoint = make_endpoint()
    now = timezone.now()
    Rejection.objects.create(
        endpoint=endpoint, reason="old", at=now - timedelta(days=31)
    )
    Rejection.objects.create(endpoint=endpoint, reason="recent", at=now)

    output = run("--older-than", "30d")

    assert list(Rejection.objects.values_list("reason", flat=True)) == ["recent"]
    assert "and 1 rejection(s)" in output


@pytest.mark.django_db
def test_prune_in_small_batches_deletes_everything_due() -> None:
    endpoint = make_endpoint()
    for n in range(7):
        aged(endpoint, f"old-{n}", Event.Status.SUCCEEDED)
    aged(endpoint, "failed", Event.Status.FAILED)

    output = run("--older-than", "30d", "--batch-size", "3")

    assert remaining() == {"failed"}
    assert "Deleted 7 " in output


@pytest.mark.django_db
def test_prune_never_loads_event_bodies() -> None:
    aged(make_endpoint(), "old", Event.Status.SUCCEEDED, body=b"x" * 1000)

    with CaptureQueriesContext(connection) as context:
        run("--older-than", "30d")

    assert remaining() == set()
    assert not [q for q in context.captured_queries if '"body"' in q["sql"]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_prune_removes_only_what_it_should_while_inserts_continue() -> None:
    endpoint = make_endpoint()
    old = timezone.now() - timedelta(days=40)
    Event.objects.bulk_create(
        Event(
            endpoint=endpoint,
            provider="github",
            delivery_id=f"old-{n}",
            event_type="push",
            body=b"{}",
            status=Event.Status.SUCCEEDED if n % 4 else Event.Status.FAILED,
            received_at=old,
        )
        for n in range(3000)
    )
    old_failed = Event.objects.filter(status=Event.Status.FAILED).count()
    stop = threading.Event()
    inserted: list[str] = []
    errors: list[BaseException] = []

    def insert_new_events() -> None:
        try:
            n = 0
            while not stop.is_set():
                # Succeeded, as prune's default deletes, but received now.
                make_event(endpoint, f"new-{n}", status=Event.Status.SUCCEEDED)
                inserted.append(f"new-{n}")
                n += 1
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    inserter = threading.Thread(target=insert_new_events)
    inserter.start()
    try:
        while len(inserted) < 20:
            time.sleep(0.01)
        before_prune = len(inserted)
        output = run("--older-than", "30d", "--batch-size", "100")
        after_prune = len(inserted)
        time.sleep(0.1)
    finally:
        stop.set()
        inserter.join(timeout=30)

    assert not errors
    assert after_prune > before_prune, "inserts should go on during the prune"
    survivors = set(Event.objects.values_list("delivery_id", flat=True))
    assert set(inserted) <= survivors
    assert Event.objects.filter(status=Event.Status.FAILED).count() == old_failed
    assert not Event.objects.filter(
        status=Event.Status.SUCCEEDED, delivery_id__startswith="old-"
    ).exists()
    assert "Deleted 2250 " in output
