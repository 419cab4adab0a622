"""A flood of bad deliveries keeps the recent-rejections record bounded per endpoint."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from tests.factories import make_endpoint
from tests.webhooks.ingest.test_views import github_headers
from webhooks.models import Endpoint, Rejection

KEPT = 5


def flood(client: Client, slug: str, count: int) -> None:
    for number in range(count):
        body = f'{{"n": {number}}}'.encode()
        response = client.post(
            f"/webhooks/{slug}/",
            body,
            content_type="application/json",
            headers=github_headers(body, secret="not the secret"),
        )
        assert response.status_code == 401


@pytest.mark.django_db
# Throttling off: here every bad delivery reaches the record (test_ratelimit.py
# covers the throttle that spares the record and the database in the first place).
@override_settings(WEBHOOKS_REJECTIONS_KEPT=KEPT, WEBHOOKS_REJECTION_LIMIT=None)
def test_rejections_kept_stay_bounded_and_newest_under_a_flood(provider_client):
    first = make_endpoint("one", "github", "s3cret")
    second = make_endpoint("two", "github", "s3cret")
    flood(provider_client, "one", 60)
    flood(provider_client, "two", 3)
    kept = Rejection.objects.filter(endpoint=first).order_by("id")
    assert kept.count() == KEPT
    # The newest are kept: the last KEPT bodies of the flood, in order.
    assert [bytes(r.body_head) for r in kept] == [
        f'{{"n": {n}}}'.encode() for n in range(60 - KEPT, 60)
    ]
    # One endpoint's flood does not push out another's record.
    assert Rejection.objects.filter(endpoint=second).count() == 3
    # The count still says how many there were.
    assert Endpoint.objects.get(pk=first.pk).rejected_count == 60
    assert Rejection.objects.count() == KEPT + 3
