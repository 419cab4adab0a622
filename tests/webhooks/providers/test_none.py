"""Unsigned deliveries (oracle: none; nothing is signed)."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from django.test import Client

from tests.factories import make_endpoint
from webhooks.models import Event

URL = "/webhooks/open/"


def post(
    client: Client,
    body: bytes,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
):
    return client.post(URL, body, content_type=content_type, headers=headers or {})


@pytest.mark.django_db
def test_unsigned_json_body_is_stored_byte_exact(provider_client: Client) -> None:
    make_endpoint("open", "none", None)
    body = json.dumps({"type": "build.finished", "build": str(uuid.uuid4())}).encode()
    response = post(provider_client, body)
    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert response.json() == {"status": "received", "id": event.pk}
    assert bytes(event.body) == body
    assert event.provider == "none"
    assert event.event_type == "build.finished"
    assert event.status == Event.Status.PENDING


@pytest.mark.django_db
def test_any_body_is_stored_even_with_a_bogus_signature_header(
    provider_client: Client,
) -> None:
    make_endpoint("open", "none", None)
    body = b"\xff\xfe not json \x00 " + uuid.uuid4().bytes
    response = post(
        provider_client, body, {"X-Signature": "whatever"}, "application/octet-stream"
    )
    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert bytes(event.body) == body
    assert event.payload is None


@pytest.mark.django_db
def test_endpoint_with_a_secret_still_verifies_nothing(provider_client: Client) -> None:
    make_endpoint("open", "none", "ignored-secret")
    assert post(provider_client, b'{"ok": true}').status_code == 200


@pytest.mark.django_db
def test_body_hash_is_the_dedup_key_without_options(provider_client: Client) -> None:
    make_endpoint("open", "none", None)
    body = json.dumps({"n": str(uuid.uuid4())}).encode()
    first = post(provider_client, body)
    second = post(provider_client, body)
    assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert (
        Event.objects.get().delivery_id == "sha256:" + hashlib.sha256(body).hexdigest()
    )
    assert post(provider_client, body + b" ").json()["status"] == "received"


@pytest.mark.django_db
def test_id_header_option_is_the_dedup_key(provider_client: Client) -> None:
    make_endpoint("open", "none", None, options={"id_header": "X-Request-Id"})
    first = post(provider_client, b'{"attempt": 1}', {"X-Request-Id": "req-1"})
    second = post(provider_client, b'{"attempt": 2}', {"X-Request-Id": "req-1"})
    assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert Event.objects.get().delivery_id == "req-1"
    third = post(provider_client, b'{"attempt": 2}', {"X-Request-Id": "req-2"})
    assert third.json()["status"] == "received"


@pytest.mark.django_db
def test_id_header_option_falls_back_to_the_body_hash_when_absent(
    provider_client: Client,
) -> None:
    make_endpoint("open", "none", None, options={"id_header": "X-Request-Id"})
    body = b'{"attempt": 1}'
    post(provider_client, body)
    assert (
        Event.objects.get().delivery_id == "sha256:" + hashlib.sha256(body).hexdigest()
    )


@pytest.mark.django_db
def test_type_header_option_is_the_event_type(provider_client: Client) -> None:
    make_endpoint("open", "none", None, options={"type_header": "X-Event-Name"})
    post(provider_client, b'{"type": "ignored"}', {"X-Event-Name": "deploy.started"})
    assert Event.objects.get().event_type == "deploy.started"


@pytest.mark.django_db
def test_get_is_not_allowed(provider_client: Client) -> None:
    make_endpoint("open", "none", None)
    response = provider_client.get(URL)
    assert response.status_code == 405
    assert Event.objects.count() == 0
