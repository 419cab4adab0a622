from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_endpoint, make_event
from webhooks.api import batches
from webhooks.models import Attempt, Event

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("webhooks_replay", *args, stdout=out)
    return out.getvalue()


def failed_event(endpoint, delivery_id, **fields) -> Event:
    fields.setdefault("status", Event.Status.FAILED)
    fields.setdefault("attempts", 8)
    fields.setdefault("last_error", "builtins.ValueError: boom")
    return make_event(endpoint, delivery_id, **fields)


def status_of(event: Event) -> str:
    event.refresh_from_db()
    return event.status


def test_replay_ids_requeues_them_with_attempts_reset_and_history_kept() -> None:
    event = failed_event(make_endpoint(), "d-1")
    Attempt.objects.create(event=event, number=8, outcome=Attempt.Outcome.FAILED)

    output = run(str(event.pk))

    event.refresh_from_db()
    assert (event.status, event.attempts) == ("pending", 0)
    assert event.next_attempt_at is not None
    assert Attempt.objects.filter(event=event).count() == 1
    assert "Queued 1 event(s) for replay." in output


def test_replay_ids_reports_unknown_ids_and_still_replays_the_others() -> None:
    event = failed_event(make_endpoint(), "d-1")

    with pytest.raises(CommandError, match=r"No event with id 999998, 999999\."):
        run("999998", str(event.pk), "999999")

    assert status_of(event) == "pending"


def test_replay_ids_skips_an_event_being_processed_and_says_so() -> None:
    endpoint = make_endpoint()
    busy = make_event(endpoint, "d-1", status=Event.Status.PROCESSING, attempts=1)
    done = make_event(endpoint, "d-2", status=Event.Status.SUCCEEDED, attempts=1)

    output = run(str(busy.pk), str(done.pk))

    assert "Queued 1 event(s) for replay." in output
    assert f"Skipped 1 event(s) being processed right now: {busy.pk}." in output
    assert (status_of(busy), status_of(done)) == ("processing", "pending")


def test_replay_ids_given_twice_replays_once() -> None:
    event = failed_event(make_endpoint(), "d-1")

    output = run(str(event.pk), str(event.pk))

    assert "Queued 1 event(s)" in output


def test_replay_status_requeues_only_events_with_that_status() -> None:
    endpoint = make_endpoint()
    failed = [failed_event(endpoint, f"f-{n}") for n in range(3)]
    succeeded = make_event(endpoint, "s-1", status=Event.Status.SUCCEEDED)

    output = run("--status", "failed")

    assert [status_of(event) for event in failed] == ["pending"] * 3
    assert status_of(succeeded) == "succeeded"
    assert "Queued 3 event(s) for replay." in output


def test_replay_status_with_endpoint_leaves_other_endpoints_alone() -> None:
    shop = failed_event(make_endpoint("shop"), "d-1")
    other = failed_event(make_endpoint("other"), "d-1")

    run("--status", "failed", "--endpoint", "shop")

    assert (status_of(shop), status_of(other)) == ("pending", "failed")


def test_replay_since_naive_time_is_utc_and_excludes_older_events() -> None:
    endpoint = make_endpoint()
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    older = failed_event(endpoint, "old", received_at=moment - timedelta(seconds=1))
    newer = failed_event(endpoint, "new", received_at=moment)

    run("--status", "failed", "--since", "2024-05-01T12:00:00")

    assert (status_of(older), status_of(newer)) == ("failed", "pending")


@pytest.mark.parametrize(
    ("since", "included"),
    [("2024-05-01T14:00:00+02:00", True), ("2024-05-01T12:00:01Z", False)],
)
def test_replay_since_honours_an_explicit_offset(since, included) -> None:
    event = failed_event(
        make_endpoint(), "d-1", received_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    )

    run("--status", "failed", "--since", since)

    assert status_of(event) == ("pending" if included else "failed")


def test_replay_since_accepts_a_date_alone() -> None:
    event = failed_event(
        make_endpoint(), "d-1", received_at=datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    )

    run("--status", "failed", "--since", "2024-05-01")

    assert status_of(event) == "pending"


def test_replay_status_walks_ids_in_batches_without_loading_them_all(
    monkeypatch,
) -> None:
    monkeypatch.setattr(batches, "BATCH_SIZE", 2)
    endpoint = make_endpoint()
    events = [failed_event(endpoint, f"d-{n}") for n in range(5)]

    with CaptureQueriesContext(connection) as context:
        output = run("--status", "failed")

    assert "Queued 5 event(s)" in output
    assert [status_of(event) for event in events] == ["pending"] * 5
    id_pages = [
        q["sql"]
        for q in context.captured_queries
        if q["sql"].startswith('SELECT "webhooks_event"."id"')
        and q["sql"].endswith("LIMIT 2")
    ]
    assert len(id_pages) == 4  # 2 + 2 + 1, then an empty page ends the walk


def test_replay_status_leaves_events_that_arrive_during_the_run_alone() -> None:
    endpoint = make_endpoint()
    first = failed_event(endpoint, "d-1")
    pages = batches.id_batches(Event.objects.filter(status="failed"), 1)

    assert next(pages) == [first.pk]
    late = failed_event(endpoint, "d-2")
    assert list(pages) == []
    assert late.pk > first.pk


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Give event ids, or --status"),
        (("1", "--status", "failed"), "not both"),
        (("1", "--endpoint", "shop"), "go with --status"),
        (("1", "--since", "2024-05-01"), "go with --status"),
        (("abc",), "whole numbers, not 'abc'"),
        (("-5",), "whole numbers"),
        (("--status", "failed", "--since", "yesterday"), "ISO 8601"),
        (("--status", "failed", "--endpoint", "nope"), "No endpoint 'nope'"),
        (("999999",), "No event with id 999999"),
    ],
)
def test_replay_bad_input_is_a_clear_command_error(args, message) -> None:
    make_endpoint("shop")

    with pytest.raises(CommandError, match=message):
        run(*args)


def test_replay_unknown_status_is_refused_by_the_parser() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        run("--status", "lost")
