from __future__ import annotations

import pytest
from django.test import override_settings

from tests.factories import make_endpoint, make_event
from webhooks.models import Event


@pytest.mark.django_db
def test_health_reports_database_layer_and_queue(client) -> None:
    endpoint = make_endpoint()
    make_event(endpoint, "a")
    make_event(endpoint, "b", status=Event.Status.SUCCEEDED)
    response = client.get("/webhooks/health/")
    assert response.status_code == 200
    report = response.json()
    assert report["database"] == "ok"
    assert report["channel_layer"] == "ok"
    assert report["pending"] == 1
    assert report["oldest_pending_seconds"] >= 0


@pytest.mark.django_db
@override_settings(CHANNEL_LAYERS={})
def test_health_without_a_channel_layer_says_none(client) -> None:
    assert client.get("/webhooks/health/").json()["channel_layer"] == "none"


@pytest.mark.django_db
@override_settings(
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
)
def test_health_with_an_unreachable_channel_layer_says_error(client, caplog) -> None:
    report = client.get("/webhooks/health/").json()
    assert report["channel_layer"] == "error"
    assert report["database"] == "ok"


@pytest.mark.django_db
def test_health_refuses_post(client) -> None:
    assert client.post("/webhooks/health/").status_code == 405
