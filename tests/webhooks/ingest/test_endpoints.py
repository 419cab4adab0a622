from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from tests.factories import make_endpoint
from tests.webhooks.ingest.test_views import SECRET, github_headers
from webhooks.models import Endpoint, EndpointSecret, Event

pytestmark = pytest.mark.django_db


def post(client, body: bytes = b"{}", secret: str = SECRET):
    return client.post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body, secret),
    )


def test_a_kept_endpoint_costs_the_delivery_no_query_but_its_insert(client) -> None:
    make_endpoint("gh", "github", SECRET)
    assert post(client).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert post(client).status_code == 200
    statements = [query["sql"].split()[0] for query in queries.captured_queries]
    assert statements.count("SELECT") == 0
    assert statements.count("INSERT") == 1


def test_a_secret_rotated_elsewhere_is_accepted_at_once(client) -> None:
    endpoint = make_endpoint("gh", "github", SECRET)
    assert post(client).status_code == 200  # the endpoint is now kept
    # Another process rotates: no signal reaches this one.
    EndpointSecret.objects.bulk_create(
        [EndpointSecret(endpoint=endpoint, value="rotated")]
    )
    assert post(client, secret="rotated").status_code == 200
    assert Event.objects.count() == 2


def test_a_wrong_secret_is_still_refused_after_the_fresh_check(client) -> None:
    make_endpoint("gh", "github", SECRET)
    post(client)
    response = post(client, secret="forged")
    assert response.status_code == 401
    assert Endpoint.objects.get().rejected_count == 1  # counted once, not twice


def test_a_change_saved_in_this_process_applies_at_once(client) -> None:
    endpoint = make_endpoint("gh", "github", SECRET)
    post(client)
    endpoint.is_active = False
    endpoint.save()
    assert post(client).status_code == 404


@override_settings(WEBHOOKS_ENDPOINT_CACHE_SECONDS=0)
def test_without_keeping_a_change_made_elsewhere_applies_at_once(client) -> None:
    make_endpoint("gh", "github", SECRET)
    post(client)
    Endpoint.objects.update(is_active=False)  # as another process would: no signal here
    assert post(client).status_code == 404
