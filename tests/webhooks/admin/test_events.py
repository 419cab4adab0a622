from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.admin.sites import site
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from tests.webhooks.admin.support import (
    EVENT_ADD,
    EVENTS,
    change_url,
    count_queries,
    make_events,
)
from webhooks.admin.events import EventAdmin
from webhooks.admin.pagination import CappedPaginator
from webhooks.models import Event

# Event list


def assert_no_unbounded_count(queries):
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts, "expected the paginator's bounded count"
    for sql in counts:
        assert "LIMIT" in sql.upper(), sql


@pytest.mark.django_db
def test_event_changelist_never_counts_the_whole_table(admin_client):
    make_events(make_endpoint(), 250)

    queries = count_queries(admin_client, EVENTS)

    assert_no_unbounded_count(queries)


@pytest.mark.django_db
def test_event_changelist_query_count_is_constant_in_the_number_of_events(admin_client):
    endpoint = make_endpoint()
    make_event(endpoint)
    few = len(count_queries(admin_client, EVENTS))
    make_events(endpoint, 250)

    many = len(count_queries(admin_client, EVENTS))

    assert many == few


@pytest.mark.django_db
def test_event_changelist_stays_under_a_fixed_query_budget(
    admin_client, django_assert_max_num_queries
):
    make_events(make_endpoint(), 120)

    with django_assert_max_num_queries(10):
        admin_client.get(EVENTS)


@pytest.mark.django_db
def test_event_changelist_past_the_cap_pages_and_says_it_counted_partly(
    admin_client, monkeypatch
):
    monkeypatch.setattr(CappedPaginator, "cap", 5)
    monkeypatch.setattr(EventAdmin, "list_per_page", 2)
    make_events(make_endpoint(), 20)

    response = admin_client.get(EVENTS)

    assert len(response.context["cl"].result_list) == 2
    assert "Counted up to 5" in response.content.decode()


@pytest.mark.django_db
def test_event_changelist_row_checkbox_is_the_one_djangos_widget_renders(admin_client):
    event = make_event(make_endpoint(), "d-<b>")
    model_admin = EventAdmin(Event, site)

    ours = model_admin.action_checkbox(event)

    assert ours == admin.ModelAdmin.action_checkbox(model_admin, event)
    assert ours in admin_client.get(EVENTS).content.decode()


@pytest.mark.django_db
def test_event_changelist_search_by_delivery_id_finds_exactly_that_event(admin_client):
    endpoint = make_endpoint()
    make_event(endpoint, "evt_1")
    make_event(endpoint, "evt_12")

    response = admin_client.get(EVENTS, {"q": "evt_1"})

    assert [e.delivery_id for e in response.context["cl"].result_list] == ["evt_1"]


@pytest.mark.django_db
def test_event_changelist_search_matches_event_type_prefix(admin_client):
    endpoint = make_endpoint()
    make_event(endpoint, "a", event_type="customer.created")
    make_event(endpoint, "b", event_type="invoice.paid")

    response = admin_client.get(EVENTS, {"q": "customer."})

    assert [e.delivery_id for e in response.context["cl"].result_list] == ["a"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "failed"}, ["b"]),
        ({"event_type": "issues"}, ["b"]),
        ({"provider": "stripe"}, ["c"]),
        (
            {
                "received_at__gte": "2000-01-01 00:00:00+00:00",
                "received_at__lt": "2000-01-02 00:00:00+00:00",
            },
            ["c"],
        ),
    ],
)
def test_event_changelist_filters_narrow_the_list(admin_client, params, expected):
    github = make_endpoint(slug="gh")
    stripe = make_endpoint(slug="st", provider="stripe")
    make_event(github, "a")
    make_event(github, "b", status="failed", event_type="issues")
    make_event(
        stripe, "c", received_at=timezone.now().replace(year=2000, month=1, day=1)
    )

    response = admin_client.get(EVENTS, params)

    assert [e.delivery_id for e in response.context["cl"].result_list] == expected


@pytest.mark.django_db
def test_event_changelist_filters_by_endpoint(admin_client):
    first = make_endpoint(slug="first")
    make_event(first, "a")
    make_event(make_endpoint(slug="second"), "b")

    response = admin_client.get(EVENTS, {"endpoint__id__exact": first.pk})

    assert [e.delivery_id for e in response.context["cl"].result_list] == ["a"]


# Event detail: read-only, escaped


@pytest.mark.django_db
def test_event_detail_shows_escaped_payload_headers_body_and_error(admin_client):
    body = b'{"note": "<script>alert(1)</script>"}'
    event = make_event(
        make_endpoint(),
        payload={"note": "<script>alert(1)</script>"},
        body=body,
        headers={"authorization": "[redacted]", "x-evil": "<b>"},
        last_error="<img src=x>",
    )

    content = admin_client.get(change_url(event)).content.decode()

    assert "<script>alert(1)" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "&lt;b&gt;" in content
    assert "&lt;img src=x&gt;" in content
    assert f"{len(body)} bytes" in content
    assert "[redacted]" in content
    assert "Not needed: the body is valid UTF-8." in content


@pytest.mark.django_db
def test_event_detail_shows_a_non_utf8_body_as_text_and_hex(admin_client):
    event = make_event(make_endpoint(), body=b"ab\xff\xfe", payload=None)

    content = admin_client.get(change_url(event)).content.decode()

    assert "ab\ufffd\ufffd" in content
    assert "00000000  61 62 ff fe" in content


@pytest.mark.django_db
def test_event_detail_shows_at_most_64_kib_of_a_large_body(admin_client):
    event = make_event(make_endpoint(), body=b"x" * 100_000, payload=None)

    content = admin_client.get(change_url(event)).content.decode()

    assert "x" * 65_536 in content
    assert "x" * 65_537 not in content
    assert "first 65536 of 100000 bytes shown" in content


@pytest.mark.django_db
def test_event_detail_is_read_only(admin_client):
    event = make_event(make_endpoint())

    response = admin_client.get(change_url(event))
    posted = admin_client.post(change_url(event), {"event_type": "changed"})

    assert 'name="_save"' not in response.content.decode()
    assert posted.status_code == 403
    event.refresh_from_db()
    assert event.event_type == "push"


@pytest.mark.django_db
def test_event_add_is_forbidden_and_not_offered(admin_client):
    assert admin_client.get(EVENT_ADD).status_code == 403
    assert EVENT_ADD not in admin_client.get(EVENTS).content.decode()


@pytest.mark.django_db
def test_event_delete_stays_available_to_superusers(admin_client):
    event = make_event(make_endpoint())
    url = reverse("admin:webhooks_event_delete", args=[event.pk])

    admin_client.post(url, {"post": "yes"})

    assert not Event.objects.exists()


@pytest.mark.django_db
def test_capped_paginator_on_a_queryset_stops_counting_past_the_cap():
    make_events(make_endpoint(), 12)
    paginator = CappedPaginator(Event.objects.all(), per_page=2)
    paginator.cap = 5

    assert paginator.count == 6
    assert paginator.capped
    assert re.fullmatch(r"bulk-\d+", paginator.page(3).object_list[0].delivery_id)
