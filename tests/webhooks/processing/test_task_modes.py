"""The task modes in one process: what is enqueued when, what a task does with its
event, and the sweep. tests/webhooks/processing/test_task_workers.py runs them with
real task workers."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib.util import find_spec

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from webhooks import tasks
from webhooks.models import Event
from webhooks.processing import claims, dispatch, replay
from webhooks.processing.sweep import sweep

pytestmark = pytest.mark.django_db(transaction=True)

DUMMY = (
    "django.tasks.backends.dummy.DummyBackend"
    if find_spec("django.tasks")
    else "django_tasks.backends.dummy.DummyBackend"
)
TASKS = {
    "default": {"BACKEND": DUMMY},
    "webhooks": {"BACKEND": DUMMY},
}


@pytest.fixture
def backend():
    """The dummy backend of the "webhooks" alias: it keeps what is enqueued."""
    with override_settings(
        TASKS=TASKS, WEBHOOKS_PROCESSING="tasks", WEBHOOKS_TASKS_BACKEND="webhooks"
    ):
        from webhooks.tasks import _task

        assert _task is not None
        backend = tasks.process_event.using(backend="webhooks").get_backend()
        backend.clear()
        yield backend
        backend.clear()


def enqueued(backend) -> list[tuple[int, object]]:
    return [(result.args[0], result.task.run_after) for result in backend.results]


def test_each_stored_delivery_is_enqueued_after_commit_by_id(backend, client) -> None:
    make_endpoint("open", "none", None)
    ids = []
    for n in range(3):
        response = client.post(
            "/webhooks/open/", json.dumps({"n": n}), content_type="application/json"
        )
        ids.append(response.json()["id"])
    assert enqueued(backend) == [(event_id, None) for event_id in ids]
    assert {r.task.name for r in backend.results} == {"process_event"}
    assert {r.task.module_path for r in backend.results} == {
        "webhooks.tasks.process_event"
    }


def test_a_task_runs_its_event_and_a_second_delivery_of_it_runs_nothing(
    backend, registry
) -> None:
    calls = []

    @registry("github", "push")
    def record(event):
        calls.append(event.pk)

    event = make_event(make_endpoint("gh"), next_attempt_at=timezone.now())
    assert tasks.process_event.call(event.pk) == "succeeded"
    assert tasks.process_event.call(event.pk) is None  # delivered twice
    assert calls == [event.pk]
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("succeeded", 1)


def test_a_task_for_an_event_held_by_a_worker_runs_nothing(backend, registry) -> None:
    @registry("github", "push")
    def never(event):
        raise AssertionError("held elsewhere")

    event = make_event(make_endpoint("gh"), next_attempt_at=timezone.now())
    claims.claim(1, "another-worker")
    assert tasks.process(event.pk) is None
    assert tasks.process(123456) is None  # and one for an event that is gone


def test_a_failed_run_enqueues_its_retry_for_the_time_it_is_due(
    backend, registry
) -> None:
    @registry("github", "push")
    def flaky(event):
        raise ConnectionError("down")

    event = make_event(make_endpoint("gh"), next_attempt_at=timezone.now())
    assert tasks.process(event.pk) == "retrying"
    event.refresh_from_db()
    assert enqueued(backend) == [(event.pk, event.next_attempt_at)]
    # Delivered before its time, the retry's task runs nothing.
    assert tasks.process(event.pk) is None


def test_the_next_event_of_an_ordering_key_is_enqueued_when_one_finishes(
    backend, registry
) -> None:
    @registry("github", "push", ordered_by=lambda event: "repo")
    def ordered(event):
        pass

    endpoint = make_endpoint("gh")
    now = timezone.now()
    first, second = (
        make_event(endpoint, f"d-{n}", next_attempt_at=now, ordering_key="k")
        for n in range(2)
    )
    assert tasks.process(second.pk) is None  # waits for the first
    assert tasks.process(first.pk) == "succeeded"
    assert enqueued(backend) == [(second.pk, None)]
    assert tasks.process(second.pk) == "succeeded"


def test_replay_enqueues_the_replayed_events(backend, registry) -> None:
    @registry("github", "push")
    def fine(event):
        pass

    event = make_event(make_endpoint("gh"), next_attempt_at=timezone.now())
    tasks.process(event.pk)
    replay.replay_many([event.pk])
    assert enqueued(backend) == [(event.pk, None)]


@override_settings(WEBHOOKS_SWEEP_AFTER_SECONDS=60)
def test_the_sweep_enqueues_events_overdue_once_until_they_are_overdue_again(
    backend,
) -> None:
    endpoint = make_endpoint("gh")
    now = timezone.now()
    lost = make_event(endpoint, "lost", next_attempt_at=now - timedelta(minutes=5))
    make_event(endpoint, "in-line", next_attempt_at=now - timedelta(seconds=10))
    make_event(endpoint, "later", next_attempt_at=now + timedelta(minutes=5))
    dead_worker = make_event(
        endpoint,
        "lease-lapsed",
        status="processing",
        claimed_by="dead",
        attempts=1,
        next_attempt_at=now - timedelta(minutes=2),
    )
    make_event(endpoint, "done", status="succeeded", next_attempt_at=None)
    assert sweep(dispatch.new_work) == 2
    assert sorted(enqueued(backend)) == sorted(
        [(lost.pk, None), (dead_worker.pk, None)]
    )
    lost.refresh_from_db()
    assert lost.next_attempt_at >= now  # due from now: not swept again at once
    backend.clear()
    assert sweep(dispatch.new_work) == 0
    assert tasks.process(dead_worker.pk) is not None  # the lapsed lease is taken over


def test_an_event_that_cannot_be_enqueued_is_still_stored_and_swept_later(
    client, caplog
) -> None:
    make_endpoint("open", "none", None)
    with override_settings(
        TASKS=TASKS, WEBHOOKS_PROCESSING="tasks", WEBHOOKS_TASKS_BACKEND="missing"
    ):
        response = client.post("/webhooks/open/", "{}", content_type="application/json")
    assert response.status_code == 200
    assert Event.objects.get().status == "pending"
    assert "Cannot enqueue events for processing" in caplog.text


def test_the_sweep_command_enqueues_overdue_events_once(backend) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    event = make_event(
        make_endpoint("gh"), next_attempt_at=timezone.now() - timedelta(hours=1)
    )
    out = StringIO()
    call_command("webhooks_sweep", stdout=out)
    assert out.getvalue().strip() == "Enqueued 1 overdue event(s) again."
    assert enqueued(backend) == [(event.pk, None)]
    with pytest.raises(CommandError, match="--every must be more than 0"):
        call_command("webhooks_sweep", "--every", "0")


def test_work_made_due_without_ids_hands_out_every_due_event(backend) -> None:
    endpoint = make_endpoint("gh")
    now = timezone.now()
    due = make_event(endpoint, "due", next_attempt_at=now - timedelta(seconds=1))
    make_event(endpoint, "later", next_attempt_at=now + timedelta(minutes=5))
    dispatch.new_work()  # as resuming a paused endpoint does
    assert enqueued(backend) == [(due.pk, None)]
