"""Shared URLs and builders for the admin tests."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from webhooks.models import Event

ENDPOINTS = reverse("admin:webhooks_endpoint_changelist")
ENDPOINT_ADD = reverse("admin:webhooks_endpoint_add")
EVENTS = reverse("admin:webhooks_event_changelist")
EVENT_ADD = reverse("admin:webhooks_event_add")


def change_url(obj):
    return reverse(f"admin:webhooks_{obj._meta.model_name}_change", args=[obj.pk])


def endpoint_form(**overrides):
    data = {
        "slug": "shop",
        "provider": "github",
        "is_active": "on",
        "tolerance_seconds": "",
        "allowed_networks": "[]",
        "options": "{}",
        "new_secret": "",
        "grace_hours": "24",
    }
    return {**data, **overrides}


def make_events(endpoint, count, **fields):
    Event.objects.bulk_create(
        Event(
            endpoint=endpoint,
            provider=endpoint.provider,
            delivery_id=f"bulk-{n}",
            event_type="push",
            body=b"{}",
            **fields,
        )
        for n in range(count)
    )


def count_queries(client, url):
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return context.captured_queries
