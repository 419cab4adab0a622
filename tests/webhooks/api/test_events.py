"""GET events/ (cursor), GET events/<id>/, POST events/<id>/replay/: answers and errors."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from tests.webhooks.api.support import bearer, token_for
from webhooks.models import ApiToken, Event

pytestmark = pytest.mark.django_db

EVENTS = reverse("webhooks:api-events")


@pytest.fixture
def auth() -> dict[str, str]:
    return bearer(token_for("view_event", "change_event", scope=ApiToken.Scope.REPLAY))


def make_old_event(endpoint, delivery_id="d-1", **fields) -> Event:
    """A stored event past the settle window, as most events a reader reads are."""
    fields.setdefault("received_at", timezone.now() - timedelta(minutes=5))
    return make_event(endpoint, delivery_id, **fields)


def get(client: Client, auth: dict[str, str], **query: object):
    return client.get(EVENTS, query, **auth)


def ids(response) -> list[int]:
    return [event["id"] for event in response.json()["events"]]


def test_list_pages_oldest_first_by_cursor(client: Client, auth) -> None:
    endpoint = make_endpoint()
    events = [make_old_event(endpoint, f"d-{n}") for n in range(5)]

    first = get(client, auth, limit=2).json()
    second = get(client, auth, limit=2, after_id=first["next_after_id"]).json()
    last = get(client, auth, limit=2, after_id=second["next_after_id"]).json()
    done = get(client, auth, limit=2, after_id=last["next_after_id"]).json()

    pages = [first, second, last]
    assert [e["id"] for page in pages for e in page["events"]] == [e.pk for e in events]
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert done == {"events": [], "next_after_id": events[-1].pk, "has_more": False}


def test_list_items_are_the_dashboard_summaries(client: Client, auth) -> None:
    event = make_old_event(make_endpoint(slug="gh"), "d-1", event_type="push")

    [item] = get(client, auth).json()["events"]

    assert item["id"] == event.pk
    assert item["endpoint"] == "gh"
    assert item["event_type"] == "push"
    assert set(item) == {
        "id", "endpoint", "provider", "event_type", "delivery_id", "status",
        "attempts", "received_at", "processed_at", "last_error", "size",
    }  # fmt: skip


def test_list_filters_combine(client: Client, auth) -> None:
    github, stripe = make_endpoint("gh"), make_endpoint("st", provider="stripe")
    wanted = make_old_event(github, "a", event_type="push", status="failed")
    make_old_event(github, "b", event_type="issues", status="failed")
    make_old_event(github, "c", event_type="push", status="succeeded")
    make_old_event(stripe, "d", event_type="push", status="failed")

    response = get(
        client, auth, endpoint="gh", provider="github", status="failed", type="push"
    )

    assert ids(response) == [wanted.pk]


def test_filtered_list_moves_the_cursor_past_rows_that_do_not_match(
    client: Client, auth
) -> None:
    endpoint = make_endpoint()
    events = [make_old_event(endpoint, f"d-{n}", event_type="push") for n in range(3)]

    body = get(client, auth, type="nothing-matches").json()

    assert body["events"] == []
    assert body["next_after_id"] == events[-1].pk


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ({"limit": 501}, "limit must be between 1 and 500"),
        ({"limit": 0}, "limit must be between 1 and 500"),
        ({"limit": "ten"}, "limit must be an integer"),
        ({"after_id": -1}, "after_id must be between"),
        ({"after_id": "1e3"}, "after_id must be an integer"),
        ({"after_id": 2**63}, "after_id must be between"),
        ({"status": "lost"}, "status must be one of"),
    ],
)
def test_bad_parameters_answer_400_with_a_reason(
    client: Client, auth, query, detail
) -> None:
    response = get(client, auth, **query)

    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert response.json()["detail"].startswith(detail)


def test_list_refuses_other_methods(client: Client, auth) -> None:
    response = client.post(EVENTS, **auth)

    assert response.status_code == 405
    assert response.json() == {"error": "method_not_allowed"}


def test_detail_has_headers_body_and_payload(client: Client, auth) -> None:
    body = b'{"action": "opened", "caf\xc3\xa9": 1}'
    event = make_old_event(
        make_endpoint(),
        body=body,
        payload={"action": "opened", "café": 1},
        headers={"x-github-event": "issues", "authorization": "[redacted]"},
        source_ip="203.0.113.9",
    )

    data = client.get(reverse("webhooks:api-event", args=[event.pk]), **auth).json()

    assert data["id"] == event.pk
    assert base64.b64decode(data["body_base64"]) == body
    assert data["body_text"] == body.decode()
    assert data["payload"] == {"action": "opened", "café": 1}
    assert data["headers"] == {
        "x-github-event": "issues",
        "authorization": "[redacted]",
    }
    assert data["source_ip"] == "203.0.113.9"


def test_detail_of_a_binary_body_has_no_text(client: Client, auth) -> None:
    event = make_old_event(make_endpoint(), body=b"\xff\xfe\x00", payload=None)

    data = client.get(reverse("webhooks:api-event", args=[event.pk]), **auth).json()

    assert data["body_text"] is None
    assert base64.b64decode(data["body_base64"]) == b"\xff\xfe\x00"


def test_detail_and_replay_of_a_missing_event_answer_404(client: Client, auth) -> None:
    detail = client.get(reverse("webhooks:api-event", args=[999]), **auth)
    replay = client.post(reverse("webhooks:api-replay", args=[999]), **auth)

    assert (detail.status_code, replay.status_code) == (404, 404)
    assert detail.json()["error"] == replay.json()["error"] == "not_found"


def test_replay_of_an_event_being_processed_answers_409(client: Client, auth) -> None:
    event = make_old_event(make_endpoint(), status="processing", claimed_by="w1")

    response = client.post(reverse("webhooks:api-replay", args=[event.pk]), **auth)

    assert response.status_code == 409
    assert response.json()["error"] == "busy"
    event.refresh_from_db()
    assert event.status == "processing"


def test_replay_needs_post(client: Client, auth) -> None:
    event = make_old_event(make_endpoint())

    response = client.get(reverse("webhooks:api-replay", args=[event.pk]), **auth)

    assert response.status_code == 405


@override_settings(WEBHOOKS_API_SETTLE_SECONDS=60)
def test_a_fresh_event_after_a_gap_in_ids_waits_for_the_settle_window(
    client: Client, auth
) -> None:
    endpoint = make_endpoint()
    first = make_old_event(endpoint, "d-1")
    gap = make_event(endpoint, "d-2")
    after_gap = make_event(endpoint, "d-3")
    gap.delete()  # as an insert still in flight looks to a reader

    held = get(client, auth).json()
    Event.objects.filter(pk=after_gap.pk).update(
        received_at=timezone.now() - timedelta(seconds=61)
    )
    settled = get(client, auth, after_id=held["next_after_id"]).json()

    assert [e["id"] for e in held["events"]] == [first.pk]
    assert held["next_after_id"] == first.pk
    assert [e["id"] for e in settled["events"]] == [after_gap.pk]


@override_settings(WEBHOOKS_API_SETTLE_SECONDS=60)
def test_fresh_events_with_contiguous_ids_are_not_held_back(
    client: Client, auth
) -> None:
    endpoint = make_endpoint()
    events = [make_old_event(endpoint, "old")]
    events += [make_event(endpoint, f"d-{n}") for n in range(3)]

    assert ids(get(client, auth)) == [event.pk for event in events]
