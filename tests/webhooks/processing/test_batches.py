"""Batches: a handler's writes commit with the record that it ran, outcomes are written
once per batch, a batch commits within its time bound, and the due query's ordering
check is served by an index."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from webhooks.models import Attempt, Endpoint, Event
from webhooks.processing import batches, claims, handlers

pytestmark = pytest.mark.django_db(transaction=True)

WORKER = "test-worker"


class Crash(BaseException):
    """Stands for the process dying mid-handler: nothing catches it."""


def make_due_events(count: int, **fields) -> list[Event]:
    endpoint = make_endpoint("gh", "github", "s")
    now = timezone.now()
    return [
        make_event(endpoint, f"d-{n}", next_attempt_at=now, payload={"n": n}, **fields)
        for n in range(count)
    ]


def side_effects() -> list[str]:
    """What handlers wrote: endpoints named after the events they ran for."""
    return sorted(
        Endpoint.objects.filter(slug__startswith="ran-").values_list("slug", flat=True)
    )


def sql_of(queries: CaptureQueriesContext, start: str, table: str) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(start) and table in q["sql"]
    ]


@override_settings(WEBHOOKS_BATCH_SECONDS=3600)  # one batch, however slow the machine
def test_a_batch_records_every_outcome_with_one_insert_and_one_update(
    registry,
) -> None:
    @registry("github", "push")
    def mixed(event):
        if event.payload["n"] % 2:
            raise RuntimeError("odd")

    make_due_events(6)
    claimed = claims.claim_events(10, WORKER)
    with CaptureQueriesContext(connection) as queries:
        outcomes = batches.run_batch(claimed)
    assert [o.status for o in outcomes] == ["succeeded", "retrying"] * 3
    assert len(sql_of(queries, "INSERT", "webhooks_attempt")) == 1
    assert len(sql_of(queries, "UPDATE", "webhooks_event")) == 1
    statuses = dict(Event.objects.values_list("delivery_id", "status"))
    assert statuses == {
        f"d-{n}": ("retrying" if n % 2 else "succeeded") for n in range(6)
    }
    retrying = Event.objects.filter(status="retrying")
    assert all(event.next_attempt_at > timezone.now() for event in retrying)
    assert all("odd" in event.last_error for event in retrying)
    assert Attempt.objects.filter(outcome="failed").count() == 3
    assert Attempt.objects.filter(outcome="succeeded").count() == 3


@override_settings(WEBHOOKS_BATCH_SECONDS=3600)  # one batch, however slow the machine
def test_a_crash_mid_batch_loses_no_handler_and_commits_no_write_twice(
    registry,
) -> None:
    crash_on = {"d-2"}

    @registry("github", "push")
    def write(event):
        Endpoint.objects.create(slug=f"ran-{event.delivery_id}", provider="none")
        if event.delivery_id in crash_on:
            raise Crash

    events = make_due_events(4)
    claimed = claims.claim_events(10, "doomed")
    with pytest.raises(Crash):
        batches.run_batch(claimed)
    # Nothing of the batch committed: neither the writes of d-0 and d-1 nor their records.
    assert side_effects() == []
    assert set(Event.objects.values_list("status", flat=True)) == {"processing"}
    assert Attempt.objects.count() == 0

    crash_on.clear()
    Event.objects.update(next_attempt_at=timezone.now())  # the leases lapse
    assert batches.run_batch(claims.claim_events(10, WORKER))
    assert side_effects() == [f"ran-d-{n}" for n in range(4)]  # each exactly once
    assert set(Event.objects.values_list("status", "attempts")) == {("succeeded", 2)}
    assert len(events) == Attempt.objects.filter(outcome="succeeded").count()


def test_a_batch_that_lost_its_lease_records_nothing_and_keeps_no_write(
    registry,
) -> None:
    @registry("github", "push")
    def write(event):
        Endpoint.objects.create(slug=f"ran-{event.delivery_id}", provider="none")
        # Meanwhile the event was taken over (its lease had lapsed) by another worker.
        Event.objects.filter(pk=event.pk).update(claimed_by="other", attempts=2)

    [event] = make_due_events(1)
    [claimed] = claims.claim_events(1, WORKER)
    assert batches.run_claimed(claimed) is None
    assert side_effects() == []
    event.refresh_from_db()
    assert (event.status, event.claimed_by, event.attempts) == (
        "processing",
        WORKER,
        1,
    )
    assert Attempt.objects.count() == 0


@override_settings(WEBHOOKS_BATCH_SECONDS=0)
def test_past_its_time_bound_a_batch_commits_what_it_has_run(registry) -> None:
    @registry("github", "push")
    def fine(event):
        pass

    make_due_events(3)
    claimed = claims.claim_events(10, WORKER)
    with CaptureQueriesContext(connection) as queries:
        outcomes = batches.run_batch(claimed)
    assert [o.status for o in outcomes] == ["succeeded"] * 3
    assert len(sql_of(queries, "UPDATE", "webhooks_event")) == 3  # one commit each


def test_a_batch_told_to_stop_gives_back_what_it_has_not_started(registry) -> None:
    ran = []

    @registry("github", "push")
    def fine(event):
        ran.append(event.pk)

    events = make_due_events(3)
    claimed = claims.claim_events(10, WORKER)
    outcomes = batches.run_batch(claimed, stopping=lambda: bool(ran))
    assert [o.event.pk for o in outcomes] == [events[0].pk]
    rows = dict(Event.objects.values_list("pk", "status"))
    assert rows == {
        events[0].pk: "succeeded",
        events[1].pk: "pending",
        events[2].pk: "pending",
    }
    assert set(
        Event.objects.exclude(pk=events[0].pk).values_list("attempts", "claimed_by")
    ) == {(0, "")}


def test_handlers_that_succeeded_commit_with_the_note_that_they_did(registry) -> None:
    @registry("github", "push")
    def first(event):
        Endpoint.objects.create(slug=f"ran-first-{event.pk}", provider="none")

    @registry("github", "push")
    def second(event):
        Endpoint.objects.create(slug=f"ran-second-{event.pk}", provider="none")
        raise RuntimeError("later")

    [event] = make_due_events(1)
    assert batches.run_batch(claims.claim_events(1, WORKER))[0].status == "retrying"
    event.refresh_from_db()
    assert side_effects() == [f"ran-first-{event.pk}"]  # second's write rolled back
    assert event.completed_handlers == [handlers.handlers_for("github", "push")[0].name]


@pytest.mark.postgres
def test_the_ordering_check_reads_the_index_of_open_keyed_events() -> None:
    endpoint = make_endpoint("gh", "github", "s")
    now = timezone.now()
    for n in range(3):
        make_event(endpoint, f"d-{n}", next_attempt_at=now, ordering_key="k")
    sql, params = claims.due(now)[:100].query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # Whether the index can serve the check at all, whatever the table's size.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "webhooks_event_ordering" in plan, plan
    assert "webhooks_event_due" in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.postgres
def test_a_backlog_the_statistics_predate_is_claimed_in_index_order() -> None:
    endpoint = make_endpoint("gh", "github", "s")
    with connection.cursor() as cursor:  # a backlog no ANALYZE has seen yet
        cursor.execute(
            f"INSERT INTO {Event._meta.db_table} (endpoint_id, provider, delivery_id,"
            " event_type, body, size, headers, source_ip, payload, received_at, status,"
            " attempts, last_error, next_attempt_at, claimed_by, ordering_key,"
            " completed_handlers, trace_parent)"
            " SELECT %s, 'github', 'd-' || n, 'push', '\\x7b7d', 2, '{}', NULL, '{}',"
            " now(), 'pending', 0, '', now(), '', '', '[]', ''"
            " FROM generate_series(1, 30000) AS n",
            [endpoint.pk],
        )

    def plan(*, in_order: bool) -> str:
        with transaction.atomic(), connection.cursor() as cursor:
            if in_order:
                claims.in_claim_order()
            sql, params = claims._claim_statement(200, None, timezone.now())
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())

    # The trap is set: left to its statistics, the planner gathers and sorts.
    assert "Sort" in plan(in_order=False)
    claim_plan = plan(in_order=True)
    assert "Sort" not in claim_plan, claim_plan
    assert "Index Scan using webhooks_event_due" in claim_plan, claim_plan
    assert len(claims.claim(200, "w")) == 200
