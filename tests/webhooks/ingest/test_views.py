from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.test import Client, override_settings

from tests.factories import make_endpoint
from tests.webhooks.providers.test_github import sign_github
from webhooks import signals
from webhooks.models import Event, Rejection

SECRET = "s3cret"


def github_headers(body: bytes, secret: str = SECRET, **extra: str) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": sign_github(body, secret),
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        **extra,
    }


@pytest.fixture
def endpoint(db):
    return make_endpoint("gh", "github", SECRET)


def post(
    client: Client,
    body: bytes = b'{"a": 1}',
    path: str = "/webhooks/gh/",
    **headers: str,
):
    return client.post(
        path,
        body,
        content_type="application/json",
        headers=github_headers(body, **headers),
    )


def test_receive_without_trailing_slash_is_accepted(provider_client, endpoint):
    assert post(provider_client, path="/webhooks/gh").status_code == 200


def test_receive_unknown_slug_returns_404(provider_client, endpoint):
    response = post(provider_client, path="/webhooks/nope/")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown_endpoint"}


def test_receive_disabled_endpoint_returns_404_and_stores_nothing(
    provider_client, endpoint
):
    endpoint.is_active = False
    endpoint.save()
    assert post(provider_client).status_code == 404
    assert not Event.objects.exists()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "options"])
def test_receive_other_methods_return_405(provider_client, endpoint, method):
    response = getattr(provider_client, method)("/webhooks/gh/")
    assert response.status_code == 405
    assert "POST" in response["Allow"]
    if method != "head":
        assert response.json() == {"error": "method_not_allowed"}


@override_settings(WEBHOOKS_MAX_BODY_BYTES=1000)
def test_receive_oversized_body_returns_413_with_the_limit(provider_client, endpoint):
    response = post(provider_client, b"x" * 1001)
    assert response.status_code == 413
    assert response.json() == {"error": "body_too_large", "limit": 1000}
    assert not Event.objects.exists()


@override_settings(WEBHOOKS_MAX_BODY_BYTES=1000)
def test_receive_body_at_the_limit_is_accepted(provider_client, endpoint):
    assert post(provider_client, b"x" * 1000).status_code == 200


def test_receive_body_over_django_upload_limit_is_accepted(provider_client, endpoint):
    # DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) must not cap deliveries; ours is 5 MiB.
    body = json.dumps({"blob": "x" * 3_000_000}).encode()
    assert post(provider_client, body).status_code == 200
    assert bytes(Event.objects.get().body) == body


@override_settings(WEBHOOKS_MAX_BODY_BYTES=1000)
def test_receive_oversized_body_is_refused_before_it_is_read(endpoint):
    # The view answers from Content-Length alone; a stream that fails when read
    # proves the body was never read into memory.
    class Unreadable:
        def read(self, *args):
            raise AssertionError("body was read")

        readline = read

    from django.core.handlers.wsgi import WSGIHandler

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/gh/",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "50000000",
        "wsgi.input": Unreadable(),
        "wsgi.url_scheme": "http",
        "REMOTE_ADDR": "127.0.0.1",
    }
    statuses = []
    body = b"".join(
        WSGIHandler()(environ, lambda status, headers: statuses.append(status))
    )
    assert statuses == ["413 Request Entity Too Large"]
    assert json.loads(body)["error"] == "body_too_large"


def test_receive_ignores_csrf(provider_client, endpoint):
    # provider_client enforces CSRF like a browser-less provider without a token.
    assert post(provider_client).status_code == 200


def test_receive_stores_headers_with_secrets_redacted(provider_client, endpoint):
    post(provider_client, Authorization="Bearer abc", Cookie="sessionid=xyz")
    headers = Event.objects.get().headers
    assert headers["authorization"] == "[redacted]"
    assert headers["cookie"] == "[redacted]"
    assert headers["x-github-event"] == "push"


def test_receive_records_source_ip(provider_client, endpoint):
    post(provider_client)
    assert Event.objects.get().source_ip == "127.0.0.1"


def test_receive_from_disallowed_network_returns_403_and_is_recorded(
    provider_client, endpoint
):
    endpoint.allowed_networks = ["10.0.0.0/8"]
    endpoint.save()
    response = post(provider_client)
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "reason": "ip_not_allowed"}
    assert not Event.objects.exists()
    assert Rejection.objects.get().reason == "ip_not_allowed"


def test_receive_from_allowed_network_is_accepted(provider_client, endpoint):
    endpoint.allowed_networks = ["10.0.0.0/8", "127.0.0.0/8"]
    endpoint.save()
    assert post(provider_client).status_code == 200


def test_receive_forwarded_for_is_ignored_from_untrusted_peers(
    provider_client, endpoint
):
    endpoint.allowed_networks = ["203.0.113.0/24"]
    endpoint.save()
    response = post(provider_client, **{"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 403


@override_settings(WEBHOOKS_TRUSTED_PROXIES=["127.0.0.1/32"])
def test_receive_forwarded_for_is_believed_from_trusted_proxies(
    provider_client, endpoint
):
    endpoint.allowed_networks = ["203.0.113.0/24"]
    endpoint.save()
    response = post(provider_client, **{"X-Forwarded-For": "198.51.100.1, 203.0.113.9"})
    assert response.status_code == 200
    assert Event.objects.get().source_ip == "203.0.113.9"


@override_settings(WEBHOOKS_RATE_LIMIT_PER_ENDPOINT=(2, 60))
def test_receive_over_the_endpoint_rate_limit_returns_429(provider_client, endpoint):
    statuses = [post(provider_client).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    response = post(provider_client)
    assert response.json() == {"error": "rate_limited"}
    assert response["Retry-After"] == "30"
    assert Event.objects.count() == 2


@override_settings(WEBHOOKS_RATE_LIMIT_PER_SOURCE=(1, 60))
def test_receive_over_the_source_rate_limit_returns_429(provider_client, endpoint):
    assert [post(provider_client).status_code for _ in range(2)] == [200, 429]


def test_receive_sends_event_received_after_commit(
    provider_client, endpoint, django_capture_on_commit_callbacks
):
    received = []

    def listener(sender, event, **kwargs):
        received.append(event.pk)

    signals.event_received.connect(listener)
    try:
        with django_capture_on_commit_callbacks() as callbacks:
            response = post(provider_client)
        assert received == []  # nothing before the commit
        for callback in callbacks:
            callback()
    finally:
        signals.event_received.disconnect(listener)
    assert received == [response.json()["id"]]


def test_receive_duplicate_sends_no_signal(
    provider_client, endpoint, django_capture_on_commit_callbacks
):
    received = []
    body = b"{}"
    headers = github_headers(body)
    provider_client.post(
        "/webhooks/gh/", body, content_type="application/json", headers=headers
    )

    def listener(sender, event, **kwargs):
        received.append(event.pk)

    signals.event_received.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            provider_client.post(
                "/webhooks/gh/", body, content_type="application/json", headers=headers
            )
    finally:
        signals.event_received.disconnect(listener)
    assert received == []


def test_receive_failing_signal_receiver_does_not_fail_the_delivery(
    provider_client, endpoint, caplog, django_capture_on_commit_callbacks
):
    def broken(sender, **kwargs):
        raise RuntimeError("listener bug")

    signals.event_received.connect(broken)
    try:
        with (
            caplog.at_level(logging.ERROR, logger="webhooks"),
            django_capture_on_commit_callbacks(execute=True),
        ):
            response = post(provider_client)
    finally:
        signals.event_received.disconnect(broken)
    assert response.status_code == 200
    assert "listener bug" in caplog.text


def test_receive_rejection_sends_delivery_rejected(
    provider_client, endpoint, django_capture_on_commit_callbacks
):
    seen = []

    def listener(sender, endpoint, reason, source_ip, **kwargs):
        seen.append((endpoint.slug, reason, source_ip))

    signals.delivery_rejected.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            provider_client.post(
                "/webhooks/gh/",
                b"{}",
                content_type="application/json",
                headers=github_headers(b"{}", secret="wrong"),
            )
    finally:
        signals.delivery_rejected.disconnect(listener)
    assert seen == [("gh", "signature_mismatch", "127.0.0.1")]


@override_settings(WEBHOOKS_REJECTIONS_KEPT=3)
def test_rejections_are_trimmed_to_the_newest(provider_client, endpoint):
    for n in range(5):
        body = json.dumps({"n": n}).encode()
        provider_client.post(
            "/webhooks/gh/",
            body,
            content_type="application/json",
            headers=github_headers(body, secret="wrong"),
        )
    kept = [
        json.loads(bytes(r.body_head))["n"] for r in Rejection.objects.order_by("id")
    ]
    assert kept == [2, 3, 4]
    endpoint.refresh_from_db()
    assert endpoint.rejected_count == 5


def test_receive_misconfigured_endpoint_returns_503(provider_client, db, caplog):
    make_endpoint("odd", "no-such-provider", "x")
    with caplog.at_level(logging.ERROR, logger="webhooks"):
        response = post(provider_client, path="/webhooks/odd/")
    assert response.status_code == 503
    assert response.json() == {"error": "unavailable"}


def test_receive_deeply_nested_json_is_stored_with_null_payload(
    provider_client, endpoint
):
    body = b"[" * 5000 + b"]" * 5000
    assert post(provider_client, body).status_code == 200
    event = Event.objects.get()
    assert bytes(event.body) == body
    assert event.payload is None


def test_receive_json_with_nul_is_stored_with_null_payload(provider_client, endpoint):
    body = b'{"text": "a\\u0000b"}'
    assert post(provider_client, body).status_code == 200
    assert Event.objects.get().payload is None


def test_receive_new_event_is_pending_and_due(provider_client, endpoint):
    post(provider_client)
    event = Event.objects.get()
    assert event.status == "pending"
    assert event.next_attempt_at is not None
    assert event.attempts == 0
