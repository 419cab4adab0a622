from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from webhooks import signals
from webhooks.models import Attempt, Endpoint, Event
from webhooks.processing import batches, claims, dispatch, replay
from webhooks.processing.outcomes import backoff_seconds

pytestmark = pytest.mark.django_db

WORKER = "test-worker"


def make_due(**fields) -> Event:
    endpoint = make_endpoint("gh", "github", "s")
    return make_event(endpoint, next_attempt_at=timezone.now(), **fields)


def make_keyed(
    endpoint: Endpoint, event_id: str, repository: str, key: str, now: datetime
) -> Event:
    """An event of ``repository`` under ordering key ``key``, due at ``now``."""
    return make_event(
        endpoint,
        event_id,
        payload={"repository": repository},
        next_attempt_at=now,
        ordering_key=key,
    )


def cycle(event: Event) -> str | None:
    """One claim and run, as a worker does; makes a retry due at once first."""
    Event.objects.filter(pk=event.pk, status=Event.Status.RETRYING).update(
        next_attempt_at=timezone.now()
    )
    assert claims.claim(10, WORKER) == [event.pk]
    return batches.run(event.pk, WORKER)


def test_handler_failing_twice_then_succeeding_ends_succeeded_after_3_attempts(
    registry,
) -> None:
    calls = []

    @registry("github", "push")
    def flaky(event):
        calls.append(event.pk)
        if len(calls) < 3:
            raise ConnectionError(f"upstream down ({len(calls)})")

    event = make_due()
    assert [cycle(event) for _ in range(3)] == ["retrying", "retrying", "succeeded"]
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("succeeded", 3)
    assert event.processed_at is not None and event.next_attempt_at is None
    assert list(
        Attempt.objects.filter(event=event)
        .order_by("number")
        .values_list("number", "outcome")
    ) == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]


def test_handler_always_failing_ends_failed_after_max_attempts_with_its_error(
    registry,
) -> None:
    @registry("github", "push")
    def broken(event):
        raise ValueError("cannot parse the order reference")

    event = make_due()
    outcomes = [cycle(event) for _ in range(8)]
    assert outcomes == ["retrying"] * 7 + ["failed"]
    event.refresh_from_db()
    assert event.attempts == 8
    assert event.last_error.startswith(
        "builtins.ValueError: cannot parse the order reference"
    )
    assert "Traceback" in event.last_error and "broken" in event.last_error
    assert claims.claim(10, WORKER) == []  # failed is final


@override_settings(WEBHOOKS_MAX_ATTEMPTS=2)
def test_max_attempts_setting_is_honoured(registry) -> None:
    @registry("github", "push")
    def broken(event):
        raise RuntimeError("no")

    event = make_due()
    assert [cycle(event) for _ in range(2)] == ["retrying", "failed"]


@override_settings(WEBHOOKS_ERROR_CHARS=300)
def test_long_errors_are_bounded_keeping_head_and_tail(registry) -> None:
    @registry("github", "push")
    def verbose(event):
        raise RuntimeError("x" * 10_000 + "THE-END")

    event = make_due()
    cycle(event)
    event.refresh_from_db()
    assert len(event.last_error) <= 310
    assert event.last_error.startswith("builtins.RuntimeError")
    assert "[...]" in event.last_error


def test_retry_is_scheduled_with_backoff(registry) -> None:
    @registry("github", "push")
    def broken(event):
        raise RuntimeError("no")

    event = make_due()
    before = timezone.now()
    assert claims.claim(1, WORKER) == [event.pk]
    batches.run(event.pk, WORKER)
    event.refresh_from_db()
    assert before <= event.next_attempt_at <= before + timedelta(seconds=11)


@override_settings(WEBHOOKS_RETRY_BASE_SECONDS=10, WEBHOOKS_RETRY_MAX_SECONDS=300)
def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    samples = {
        attempt: [backoff_seconds(attempt, rng) for _ in range(300)]
        for attempt in range(1, 10)
    }
    for attempt, values in samples.items():
        ceiling = min(300, 10 * 2 ** (attempt - 1))
        assert all(0 <= value <= ceiling for value in values)
        assert max(values) > 0.8 * ceiling  # the whole range is used...
        assert len({round(value, 6) for value in values}) > 250  # ...and values differ
    means = [sum(values) / len(values) for values in samples.values()]
    assert means[0] < means[2] < means[4] < means[5]
    assert max(samples[9]) <= 300


def test_event_without_handlers_is_skipped() -> None:
    event = make_due(event_type="nobody.listens")
    assert cycle(event) == "skipped"
    event.refresh_from_db()
    assert event.processed_at is not None


def test_unparsed_body_fails_at_once_with_a_clear_error(registry) -> None:
    @registry("github", "push")
    def never_called(event):
        raise AssertionError("must not run")

    event = make_due(payload=None, body=b"\xff not json")
    assert cycle(event) == "failed"
    event.refresh_from_db()
    assert "did not parse" in event.last_error
    assert event.attempts == 1


def test_handlers_run_in_registration_order_and_succeeded_ones_are_not_rerun(
    registry,
) -> None:
    calls = []

    @registry("github", "*")
    def first(event):
        calls.append("first")

    @registry("*", "push")
    def second(event):
        calls.append("second")
        if calls.count("second") == 1:
            raise RuntimeError("once")

    @registry("github", "pull_request")
    def unrelated(event):
        calls.append("unrelated")

    event = make_due()
    assert cycle(event) == "retrying"
    assert cycle(event) == "succeeded"
    assert calls == ["first", "second", "second"]
    event.refresh_from_db()
    assert len(event.completed_handlers) == 2


def test_pattern_event_types_match_families(registry) -> None:
    seen = []

    @registry("stripe", "customer.subscription.*")
    def subscriptions(event):
        seen.append(event.event_type)

    endpoint = make_endpoint("st", "stripe", "s")
    event = make_event(
        endpoint,
        event_type="customer.subscription.updated",
        next_attempt_at=timezone.now(),
    )
    other = make_event(
        endpoint, "d-2", event_type="customer.created", next_attempt_at=timezone.now()
    )
    for each in (event, other):
        assert claims.claim(1, WORKER) == [each.pk]
        batches.run(each.pk, WORKER)
    assert seen == ["customer.subscription.updated"]


def test_a_failing_handler_rolls_back_its_own_writes(registry) -> None:
    @registry("github", "push")
    def half_done(event):
        Event.objects.filter(pk=event.pk).update(event_type="tampered")
        raise RuntimeError("after writing")

    event = make_due()
    cycle(event)
    event.refresh_from_db()
    assert event.event_type == "push"


def test_expired_lease_puts_the_event_back_and_fences_the_old_worker(registry) -> None:
    @registry("github", "push")
    def fine(event):
        pass

    event = make_due()
    assert claims.claim(1, "dead-worker") == [event.pk]
    assert claims.claim(1, WORKER) == []  # leased
    Event.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert claims.claim(1, WORKER) == [event.pk]
    assert batches.run(event.pk, "dead-worker") is None  # lost its lease
    assert batches.run(event.pk, WORKER) == "succeeded"
    event.refresh_from_db()
    assert event.attempts == 2


def test_a_claimed_batch_runs_from_the_rows_the_claim_read(registry) -> None:
    seen = []

    @registry("github", "push")
    def record(event):
        seen.append((event.pk, event.payload, event.body))

    endpoint = make_endpoint("gh", "github", "s")
    now = timezone.now()  # a burst: one due time for all, so the id breaks the tie
    events = [
        make_event(endpoint, f"d-{n}", payload={"n": n}, next_attempt_at=now)
        for n in range(3)
    ]
    claimed = claims.claim_events(10, WORKER)
    assert [event.pk for event in claimed] == [event.pk for event in events]
    assert {(e.status, e.claimed_by, e.attempts) for e in claimed} == {
        ("processing", WORKER, 1)
    }
    with CaptureQueriesContext(connection) as queries:
        assert batches.run_claimed(claimed[0]) == "succeeded"
    # Nothing of the event is read again, except the deferred body the handler asked
    # for; on PostgreSQL the batch also locks its rows, reading the fence columns only.
    reads = [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")
    ]
    bodies = [sql for sql in reads if '"body"' in sql]
    locks = [sql for sql in reads if "FOR UPDATE" in sql]
    assert len(bodies) == 1 and len(reads) == 1 + len(locks)
    assert len(locks) == (1 if connection.vendor == "postgresql" else 0)
    assert all('"payload"' not in sql and '"headers"' not in sql for sql in locks)
    assert seen == [(events[0].pk, {"n": 0}, b'{"ok": true}')]
    assert Attempt.objects.get(event=events[0]).outcome == "succeeded"


def test_a_claimed_event_whose_lease_lapsed_records_no_outcome(registry) -> None:
    @registry("github", "push")
    def fine(event):
        pass

    event = make_due()
    [stale] = claims.claim_events(1, "dead-worker")
    Event.objects.filter(pk=event.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    [fresh] = claims.claim_events(1, WORKER)
    assert batches.run_claimed(stale) is None
    assert batches.run_claimed(fresh) == "succeeded"
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("succeeded", 2)


def test_renew_extends_only_the_workers_own_leases() -> None:
    event = make_due()
    claims.claim(1, WORKER)
    Event.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    claims.renew([event.pk], "someone-else")
    event.refresh_from_db()
    assert event.next_attempt_at <= timezone.now()
    claims.renew([event.pk], WORKER)
    event.refresh_from_db()
    assert event.next_attempt_at > timezone.now() + timedelta(seconds=200)


def test_release_gives_back_unstarted_claims() -> None:
    event = make_due()
    claims.claim(1, WORKER)
    claims.release([event.pk], WORKER)
    event.refresh_from_db()
    assert (event.status, event.attempts, event.claimed_by) == ("pending", 0, "")
    assert claims.claim(1, WORKER) == [event.pk]


def test_ordered_events_of_one_key_run_one_at_a_time_in_order(registry) -> None:
    @registry("github", "push", ordered_by=lambda event: event.payload["repository"])
    def ordered(event):
        pass

    endpoint = make_endpoint("gh", "github", "s")
    now = timezone.now()
    key = "tests.webhooks.processing.test_queue.ordered:octo/repo"
    first = make_keyed(endpoint, "a", "octo/repo", key, now)
    second = make_keyed(endpoint, "b", "octo/repo", key, now)
    other = make_keyed(endpoint, "c", "other", "k2", now)
    assert claims.claim(10, WORKER) == [first.pk, other.pk]
    batches.run(first.pk, WORKER)
    assert claims.claim(10, WORKER) == [second.pk]


def test_ingest_sets_the_ordering_key_from_the_handler(registry, client) -> None:
    import json

    from tests.webhooks.ingest.test_views import github_headers

    @registry(
        "github",
        "push",
        ordered_by=lambda event: event.payload["repository"]["full_name"],
    )
    def ordered(event):
        pass

    make_endpoint("gh", "github", "s3cret")
    body = json.dumps({"repository": {"full_name": "octo/repo"}}).encode()
    client.post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers={**github_headers(body), "X-GitHub-Event": "push"},
    )
    assert Event.objects.get().ordering_key.endswith("ordered:octo/repo")


def test_ordered_by_that_raises_never_costs_the_delivery(registry, client) -> None:
    from tests.webhooks.ingest.test_views import github_headers

    @registry("github", "push", ordered_by=lambda event: event.payload["missing"])
    def ordered(event):
        pass

    make_endpoint("gh", "github", "s3cret")
    body = b"{}"
    response = client.post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body),
    )
    assert response.status_code == 200
    assert Event.objects.get().ordering_key == ""


def test_every_status_change_is_announced_after_commit(
    registry, django_capture_on_commit_callbacks
) -> None:
    @registry("github", "push")
    def fine(event):
        pass

    changes = []

    def listener(sender, event, previous, **kwargs):
        changes.append((previous, event.status))

    signals.event_status_changed.connect(listener)
    try:
        event = make_due()
        with django_capture_on_commit_callbacks(execute=True):
            claims.claim(1, WORKER)
        with django_capture_on_commit_callbacks(execute=True):
            batches.run(event.pk, WORKER)
    finally:
        signals.event_status_changed.disconnect(listener)
    assert changes == [("pending", "processing"), ("processing", "succeeded")]


def test_replay_requeues_and_keeps_the_attempt_history(registry) -> None:
    @registry("github", "push")
    def fine(event):
        pass

    event = make_due()
    cycle(event)
    replayed = replay.replay(event.pk)
    assert replayed is not None
    assert (replayed.status, replayed.attempts, replayed.completed_handlers) == (
        "pending",
        0,
        [],
    )
    assert cycle(event) == "succeeded"
    assert Attempt.objects.filter(event=event).count() == 2


def test_replay_of_a_missing_event_returns_none() -> None:
    assert replay.replay(123456) is None


def test_replay_leaves_a_processing_event_alone() -> None:
    event = make_due()
    claims.claim(1, WORKER)
    assert replay.replay(event.pk).status == "processing"


def test_a_new_event_wakes_processing_after_commit(
    client, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from tests.webhooks.ingest.test_views import github_headers

    woken: list[bool] = []
    monkeypatch.setattr(dispatch, "new_work", lambda ids=(): woken.append(True))
    make_endpoint("gh", "github", "s3cret")
    body = b"{}"
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(
            "/webhooks/gh/",
            body,
            content_type="application/json",
            headers=github_headers(body),
        )
    assert woken == []  # not before the commit
    for callback in callbacks:
        callback()
    assert woken == [True]


def test_a_duplicate_wakes_nothing(
    client, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from tests.webhooks.ingest.test_views import github_headers

    woken: list[bool] = []
    monkeypatch.setattr(dispatch, "new_work", lambda ids=(): woken.append(True))
    make_endpoint("gh", "github", "s3cret")
    body = b"{}"
    headers = github_headers(body)
    client.post("/webhooks/gh/", body, content_type="application/json", headers=headers)
    with django_capture_on_commit_callbacks() as callbacks:
        client.post(
            "/webhooks/gh/", body, content_type="application/json", headers=headers
        )
    for callback in callbacks:
        callback()
    assert woken == []
