"""The Event list's replay action, and the attempts shown on an event's page."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from tests.webhooks.admin.support import EVENTS, change_url
from webhooks.models import Attempt, Event

pytestmark = pytest.mark.django_db


def staff_client(*codenames: str, enforce_csrf_checks: bool = False) -> Client:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="webhooks", codename__in=codenames
        )
    )
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    client.force_login(user)
    return client


def replay_post(client: Client, *events: Event, **extra):
    data = {
        "action": "replay_events",
        ACTION_CHECKBOX_NAME: [event.pk for event in events],
        "index": 0,
        **extra,
    }
    return client.post(EVENTS, data, follow=True)


def failed_event(endpoint, delivery_id="d-1") -> Event:
    return make_event(endpoint, delivery_id, status=Event.Status.FAILED, attempts=8)


def status_of(event: Event) -> str:
    event.refresh_from_db()
    return event.status


def offered_actions(client: Client) -> list[str]:
    form = client.get(EVENTS).context["action_form"]
    return [] if form is None else [name for name, _ in form.fields["action"].choices]


def test_replay_action_is_offered_to_change_event_and_never_bulk_delete() -> None:
    client = staff_client("view_event", "change_event")

    assert offered_actions(client) == ["", "replay_events"]


def test_replay_action_is_not_offered_to_superusers_with_bulk_delete(
    admin_client,
) -> None:
    assert "delete_selected" not in offered_actions(admin_client)
    assert "replay_events" in offered_actions(admin_client)


def test_replay_action_is_not_offered_to_a_view_only_user() -> None:
    assert offered_actions(staff_client("view_event")) == []


def test_replay_action_posted_by_a_view_only_user_does_nothing() -> None:
    event = failed_event(make_endpoint())

    response = replay_post(staff_client("view_event"), event)

    assert response.status_code == 200
    assert status_of(event) == "failed"


def test_replay_action_by_staff_with_change_event_requeues_and_reports() -> None:
    endpoint = make_endpoint()
    events = [failed_event(endpoint, f"d-{n}") for n in range(3)]
    Attempt.objects.create(event=events[0], number=8, outcome=Attempt.Outcome.FAILED)

    response = replay_post(staff_client("view_event", "change_event"), *events[:2])

    assert [status_of(event) for event in events] == ["pending", "pending", "failed"]
    assert events[0].attempts == 0
    assert Attempt.objects.filter(event=events[0]).count() == 1
    messages = [str(message) for message in response.context["messages"]]
    assert messages == ["Queued 2 event(s) for replay."]


def test_replay_action_skips_events_being_processed_with_a_warning(
    admin_client,
) -> None:
    endpoint = make_endpoint()
    busy = make_event(endpoint, "busy", status=Event.Status.PROCESSING, attempts=1)
    done = make_event(endpoint, "done", status=Event.Status.SUCCEEDED, attempts=1)

    response = replay_post(admin_client, busy, done)

    assert (status_of(busy), status_of(done)) == ("processing", "pending")
    messages = [str(message) for message in response.context["messages"]]
    assert messages[0] == "Queued 1 event(s) for replay."
    assert f"Skipped 1 event(s) being processed right now (#{busy.pk})" in messages[1]


def test_replay_action_across_all_matching_events_replays_every_one(
    admin_client,
) -> None:
    endpoint = make_endpoint()
    events = [failed_event(endpoint, f"d-{n}") for n in range(3)]

    replay_post(admin_client, events[0], select_across=1)

    assert [status_of(event) for event in events] == ["pending"] * 3


def test_replay_action_without_a_csrf_token_is_refused() -> None:
    event = failed_event(make_endpoint())
    client = staff_client("view_event", "change_event", enforce_csrf_checks=True)

    response = client.post(
        EVENTS,
        {"action": "replay_events", ACTION_CHECKBOX_NAME: [event.pk], "index": 0},
    )

    assert response.status_code == 403
    assert status_of(event) == "failed"


# Attempts on the event page


def test_event_page_lists_attempts_newest_first_with_escaped_errors() -> None:
    event = failed_event(make_endpoint())
    now = timezone.now()
    Attempt.objects.create(
        event=event, number=1, worker="host-1:42", started_at=now, finished_at=now,
        outcome=Attempt.Outcome.FAILED, error="builtins.ValueError: <script>alert(1)</script>",
    )  # fmt: skip
    Attempt.objects.create(
        event=event, number=2, worker="host-2:7", started_at=now, finished_at=now,
        outcome=Attempt.Outcome.SUCCEEDED,
    )  # fmt: skip

    # A view-only user sees the history too: it is part of the event's record.
    content = staff_client("view_event").get(change_url(event)).content.decode()

    assert "attempts (newest first)" in content.lower()
    assert content.index("host-2:7") < content.index("host-1:42")
    assert "<script>alert(1)" not in content
    assert "<pre" in content and "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_event_page_offers_no_way_to_add_change_or_delete_attempts(
    admin_client,
) -> None:
    event = failed_event(make_endpoint())
    Attempt.objects.create(event=event, number=1, outcome=Attempt.Outcome.FAILED)

    content = admin_client.get(change_url(event)).content.decode()

    assert 'name="attempt_log-MAX_NUM_FORMS" value="0"' in content
    assert "attempt_log-0-DELETE" not in content
    assert 'name="attempt_log-0-error"' not in content
