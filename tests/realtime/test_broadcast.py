from __future__ import annotations

import json
from datetime import UTC, datetime

import msgpack
import pytest
from django.test import Client, override_settings

from realtime import broadcast
from realtime.wire import event_summary, rejection_summary
from tests.factories import make_endpoint, make_event
from tests.webhooks.ingest.test_views import github_headers
from webhooks.models import Event

UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
    }
}


@pytest.mark.django_db
def test_summary_is_primitive_and_survives_json_and_msgpack() -> None:
    endpoint = make_endpoint("gh", "github", "top-secret-value")
    event = make_event(endpoint, processed_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    summary = event_summary(event)
    assert json.loads(json.dumps(summary)) == summary
    assert msgpack.unpackb(msgpack.packb(summary)) == summary
    assert summary["processed_at"] == "2026-01-02T03:04:05Z"
    assert summary["size"] == len(b'{"ok": true}')
    assert "top-secret-value" not in json.dumps(summary)


@pytest.mark.django_db
def test_summary_bounds_last_error() -> None:
    event = make_event(make_endpoint(), last_error="x" * 10_000)
    assert len(event_summary(event)["last_error"]) == 500


@pytest.mark.django_db
def test_rejection_summary_is_primitive() -> None:
    summary = rejection_summary(
        make_endpoint("gh"),
        "signature_mismatch",
        None,
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert summary == {
        "endpoint": "gh",
        "reason": "signature_mismatch",
        "source_ip": None,
        "at": "2026-01-01T00:00:00Z",
    }
    assert msgpack.unpackb(msgpack.packb(summary)) == summary


@pytest.mark.django_db(transaction=True)
@override_settings(CHANNEL_LAYERS=UNREACHABLE_REDIS, REALTIME_SEND_TIMEOUT_SECONDS=0.2)
def test_unreachable_layer_never_fails_ingest_and_is_counted(caplog) -> None:
    make_endpoint("gh", "github", "s3cret")
    failed_before = broadcast.stats["failed"]
    body = b'{"zen": "still stored"}'
    response = Client().post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body),
    )
    assert response.status_code == 200
    assert Event.objects.count() == 1
    assert broadcast.stats["failed"] == failed_before + 1
    assert "Dashboard broadcast dropped" in caplog.text


@pytest.mark.django_db(transaction=True)
@override_settings(CHANNEL_LAYERS={})
def test_without_a_layer_nothing_is_sent() -> None:
    sent_before = broadcast.stats["sent"]
    make_endpoint("gh", "github", "s3cret")
    body = b"{}"
    assert (
        Client()
        .post(
            "/webhooks/gh/",
            body,
            content_type="application/json",
            headers=github_headers(body),
        )
        .status_code
        == 200
    )
    assert broadcast.stats["sent"] == sent_before
