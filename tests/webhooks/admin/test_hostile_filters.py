"""Hostile query strings on the admin's lists: refused (Django's ``?e=1``, or a 4xx), never a 500.

Run in the PostgreSQL lane too, where a NUL in a query used to reach the
database and answer 500 (psycopg's DataError).
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.urls import reverse
from hypothesis import event, given
from hypothesis import strategies as st

from tests.factories import make_endpoint, make_event
from tests.hostile import describe, error_log, examples
from webhooks.api import tokens
from webhooks.models import Attempt, Rejection

#: Each list, with the parameters its filters, search, ordering and pages read.
LISTS = {
    "event": [
        "endpoint__id__exact",
        "endpoint__isnull",
        "provider",
        "status__exact",
        "event_type",
        "received_at__gte",
        "received_at__lt",
    ],
    "endpoint": ["provider__exact", "is_active__exact"],
    "rejection": ["endpoint__id__exact", "reason__exact"],
    "apitoken": ["scope__exact", "revoked_at__isempty"],
}
COMMON = ["q", "o", "p", "e", "all", "_to_field", "_popup", "_facets"]
#: Lookups Django would accept on any field of the model, which no filter offers.
UNOFFERED = [
    "id__exact",
    "delivery_id",
    "body__contains",
    "last_error__regex",
    "source_ip",
    "payload__a",
    "endpoint__slug",
]

#: Percent-encoded pieces: NUL, invalid UTF-8, a UTF-8-encoded surrogate, separators.
RAW_PIECES = ["%00", "%FF", "%ED%A0%80", "%ZZ", "%", "&", "=", "+", "%26", "%3D"]
VALUES = [
    "\x00",
    "failed\x00",
    "abc",
    "-1",
    "0",
    "99999999999999999999",
    "-99999999999999999999",
    "1e999",
    "NaN",
    "inf",
    "1.5",
    "",
    "2026-13-45",
    "0001-01-01 00:00:00+05:00",
    "9999-12-31 23:59:59-05:00",
    "0000-00-00",
    "x" * 3000,
    "\udfff",
    "(",
    "'",
    "%",
]


def encoded(text: str) -> str:
    return quote(text, safe="", errors="surrogatepass")


values = st.one_of(
    st.sampled_from(VALUES).map(encoded),
    st.text(max_size=20).map(encoded),
    st.lists(st.sampled_from(RAW_PIECES) | st.text(max_size=4).map(encoded)).map(
        "".join
    ),
)


@st.composite
def query_strings(draw: st.DrawFn, names: list[str]) -> str:
    keys = st.one_of(
        st.sampled_from(names + COMMON),
        st.sampled_from(UNOFFERED),
        st.text(max_size=10).map(encoded),
        st.sampled_from(RAW_PIECES),
    )
    pairs = draw(st.lists(st.tuples(keys, values), min_size=1, max_size=4))
    return "&".join(f"{key}={value}" for key, value in pairs)


@pytest.fixture
def rows(db, admin_user):
    endpoint = make_endpoint()
    event = make_event(endpoint, status="failed")
    Attempt.objects.create(event=event, number=1, worker="w", error="boom")
    Rejection.objects.create(
        endpoint=endpoint, reason="signature_mismatch", body_head=b"x"
    )
    tokens.issue(admin_user, "ci", "read")
    return event


def get(client, url: str):
    """The answer; it fails on a 5xx or an ERROR record.

    The one ERROR allowed goes with a 400: Django's security log of a tampered
    admin parameter (``_to_field``), which is that log's purpose.
    """
    with error_log() as records:
        response = client.get(url)
    assert response.status_code < 500, (url, response.status_code)
    unexpected = [
        record
        for record in records
        if not (
            response.status_code == 400 and record.name.startswith("django.security.")
        )
    ]
    assert not unexpected, describe(unexpected)
    return response


def refused(response) -> bool:
    """Django's answer to a filter it cannot apply: back to the list, flagged."""
    return response.status_code == 302 and response["Location"].endswith("?e=1")


@pytest.mark.parametrize(
    "query",
    [
        "status__exact=%00",
        "status__exact=failed%00",
        "provider=%00",
        "event_type=a%00b",
        "q=%00",
        "o=%00",
        "endpoint__id__exact=%00",
        "%00=1",
        "received_at__gte=0001-01-01+00:00:00%2B05:00",
        "received_at__lt=9999-12-31+23:59:59-05:00",
        "received_at__gte=2026-13-45",
        "endpoint__id__exact=99999999999999999999",
        "endpoint__id__exact=abc",
    ],
)
def test_event_list_refuses_a_filter_value_the_database_cannot_take(
    admin_client, rows, query
):
    response = get(
        admin_client, reverse("admin:webhooks_event_changelist") + "?" + query
    )

    # A date PostgreSQL can hold but Python cannot convert to UTC (SQLite's way)
    # is refused on SQLite only; a NUL, everywhere.
    assert refused(response) or response.status_code == 200, response
    if "%00" in query:
        assert refused(response)


@pytest.mark.parametrize("model", sorted(LISTS))
@pytest.mark.parametrize("query", ["q=%00", "%00=x", "o=1%00"])
def test_every_list_refuses_a_nul_anywhere_in_the_query(
    admin_client, rows, model, query
):
    url = reverse(f"admin:webhooks_{model}_changelist")

    assert refused(get(admin_client, f"{url}?{query}"))
    # With the flag already set Django shows its error page instead of looping.
    assert get(admin_client, f"{url}?e=1&{query}").status_code == 200


@pytest.mark.parametrize("lookup", UNOFFERED)
def test_event_list_refuses_a_lookup_no_filter_offers(admin_client, rows, lookup):
    url = reverse("admin:webhooks_event_changelist")

    assert refused(get(admin_client, f"{url}?{lookup}=("))


def test_event_list_still_applies_each_filter_it_offers(admin_client, rows):
    url = reverse("admin:webhooks_event_changelist")

    response = get(admin_client, f"{url}?status__exact=failed&provider=github&q=d-1")

    assert [event.pk for event in response.context["cl"].result_list] == [rows.pk]


def test_autocomplete_with_a_nul_in_the_term_finds_nothing(admin_client, rows):
    response = get(
        admin_client,
        reverse("admin:autocomplete")
        + "?term=%00&app_label=webhooks&model_name=event&field_name=endpoint",
    )

    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize("suffix", ["change/", "delete/", "history/"])
@pytest.mark.parametrize("object_id", ["%00", "a%00b", "99999999999999999999", "-1"])
@pytest.mark.parametrize("model", [*sorted(LISTS), "attempt"])
def test_object_pages_answer_a_hostile_id_without_a_500(
    admin_client, rows, model, object_id, suffix
):
    response = get(admin_client, f"/admin/webhooks/{model}/{object_id}/{suffix}")

    assert response.status_code in (302, 400, 404), response


def test_event_page_keeps_hostile_changelist_filters_as_text(admin_client, rows):
    url = reverse("admin:webhooks_event_change", args=[rows.pk])

    response = get(admin_client, f"{url}?_changelist_filters=status__exact%3D%2500")

    assert response.status_code == 200
    assert "boom" in response.content.decode()  # the attempt's error, inline


@pytest.mark.parametrize("model", sorted(LISTS))
@examples(60)
@given(data=st.data())
def test_lists_answer_any_query_string_without_a_500(admin_client, rows, model, data):
    query = data.draw(query_strings(LISTS[model]), label="query")

    response = get(
        admin_client, f"{reverse(f'admin:webhooks_{model}_changelist')}?{query}"
    )

    event("refused" if refused(response) else str(response.status_code))
    assert response.status_code in (200, 302, 400), (query, response)
