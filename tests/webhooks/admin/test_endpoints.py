from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_endpoint, make_event
from tests.webhooks.admin.support import (
    ENDPOINT_ADD,
    ENDPOINTS,
    change_url,
    count_queries,
    endpoint_form,
    make_events,
)
from webhooks.models import Endpoint, EndpointSecret, Event, Rejection

# Endpoint list


@pytest.mark.django_db
def test_endpoint_changelist_shows_url_recent_events_and_rejections(admin_client):
    endpoint = make_endpoint(slug="shop", rejected_count=7)
    make_event(endpoint, "recent")
    make_event(endpoint, "old", received_at=timezone.now() - timedelta(days=2))

    response = admin_client.get(ENDPOINTS)

    content = response.content.decode()
    assert "http://127.0.0.1:8000/webhooks/shop/" in content
    assert '<td class="field-events_24h">1</td>' in content
    assert '<td class="field-rejected_count">7</td>' in content


@pytest.mark.django_db
def test_endpoint_changelist_query_count_does_not_grow_with_endpoints(admin_client):
    make_endpoint(slug="first")
    one = len(count_queries(admin_client, ENDPOINTS))
    for n in range(9):
        endpoint = make_endpoint(slug=f"more-{n}")
        make_event(endpoint)

    ten = len(count_queries(admin_client, ENDPOINTS))

    assert ten == one


# Endpoint form: secrets are write-only


@pytest.mark.django_db
def test_endpoint_add_with_generate_shows_the_secret_once_and_stores_it(admin_client):
    response = admin_client.post(
        ENDPOINT_ADD,
        endpoint_form(provider="stripe", generate_secret="on"),
        follow=True,
    )

    endpoint = Endpoint.objects.get(slug="shop")
    secret = endpoint.secrets.get()
    assert secret.value.startswith("whsec_")
    assert secret.expires_at is None
    shown = [str(message) for message in response.context["messages"]]
    assert sum(secret.value in message for message in shown) == 1
    assert response.content.decode().count(secret.value) == 1
    assert secret.value not in admin_client.get(change_url(endpoint)).content.decode()


@pytest.mark.django_db
def test_endpoint_add_with_typed_secret_stores_it_without_showing_it(admin_client):
    response = admin_client.post(
        ENDPOINT_ADD, endpoint_form(new_secret="typed-secret-value"), follow=True
    )

    assert EndpointSecret.objects.get().value == "typed-secret-value"
    assert "typed-secret-value" not in response.content.decode()


@pytest.mark.django_db
def test_endpoint_change_with_new_secret_rotates_and_never_shows_either(admin_client):
    endpoint = make_endpoint(slug="shop", secret="old-secret-value")

    admin_client.post(
        change_url(endpoint),
        endpoint_form(new_secret="new-secret-value", grace_hours="6"),
    )

    old = endpoint.secrets.get(value="old-secret-value")
    expected = timezone.now() + timedelta(hours=6)
    assert abs(old.expires_at - expected) < timedelta(minutes=1)
    assert endpoint.valid_secrets() == ["new-secret-value", "old-secret-value"]
    page = admin_client.get(change_url(endpoint)).content.decode()
    assert "new-secret-value" not in page
    assert "old-secret-value" not in page
    assert "current" in page
    assert "valid until" in page


@pytest.mark.django_db
def test_endpoint_change_without_secret_keeps_the_secrets(admin_client):
    endpoint = make_endpoint(slug="shop", secret="kept-secret")

    response = admin_client.post(change_url(endpoint), endpoint_form(is_active=""))

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    assert endpoint.valid_secrets() == ["kept-secret"]


@pytest.mark.django_db
def test_endpoint_change_form_error_does_not_render_the_typed_secret(admin_client):
    endpoint = make_endpoint(slug="shop")

    response = admin_client.post(
        change_url(endpoint),
        endpoint_form(new_secret="typed-secret-value", allowed_networks='["nope"]'),
    )

    assert response.status_code == 200
    assert "typed-secret-value" not in response.content.decode()


@pytest.mark.django_db
def test_endpoint_add_stripe_without_secret_is_a_form_error(admin_client):
    response = admin_client.post(ENDPOINT_ADD, endpoint_form(provider="stripe"))

    assert response.status_code == 200
    assert "This provider needs a secret" in response.content.decode()
    assert not Endpoint.objects.exists()


@pytest.mark.django_db
def test_endpoint_add_unsigned_provider_without_secret_is_accepted(admin_client):
    response = admin_client.post(ENDPOINT_ADD, endpoint_form(provider="none"))

    assert response.status_code == 302
    assert not Endpoint.objects.get().secrets.exists()


@pytest.mark.django_db
def test_endpoint_add_with_secret_and_generate_is_a_form_error(admin_client):
    response = admin_client.post(
        ENDPOINT_ADD, endpoint_form(new_secret="typed", generate_secret="on")
    )

    assert "not both" in response.content.decode()
    assert not Endpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "networks", ['["10.0.0.0/33"]', '["not-a-network"]', '"10.0.0.0/8"', "[8]"]
)
def test_endpoint_add_invalid_networks_is_a_form_error(admin_client, networks):
    response = admin_client.post(
        ENDPOINT_ADD, endpoint_form(new_secret="s", allowed_networks=networks)
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["allowed_networks"]
    assert not Endpoint.objects.exists()


@pytest.mark.django_db
def test_endpoint_add_valid_networks_are_stored(admin_client):
    admin_client.post(
        ENDPOINT_ADD,
        endpoint_form(
            new_secret="s", allowed_networks='["192.0.2.0/24", "2001:db8::/32"]'
        ),
    )

    assert Endpoint.objects.get().allowed_networks == ["192.0.2.0/24", "2001:db8::/32"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("provider", "options", "message"),
    [
        ("hmac", '{"algorithm": "md4"}', "algorithm must be one of"),
        ("github", '{"colour": "blue"}', "unknown option(s)"),
        ("github", '["a list"]', "Enter an object"),
    ],
)
def test_endpoint_add_invalid_options_is_a_form_error(
    admin_client, provider, options, message
):
    response = admin_client.post(
        ENDPOINT_ADD, endpoint_form(provider=provider, new_secret="s", options=options)
    )

    assert message in " ".join(response.context["adminform"].form.errors["options"])
    assert not Endpoint.objects.exists()


@pytest.mark.django_db
def test_endpoint_add_reserved_slug_is_a_form_error(admin_client):
    response = admin_client.post(
        ENDPOINT_ADD, endpoint_form(slug="health", new_secret="s")
    )

    assert response.context["adminform"].form.errors["slug"]
    assert not Endpoint.objects.exists()


@pytest.mark.django_db
def test_endpoint_add_unknown_provider_is_a_form_error(admin_client):
    response = admin_client.post(
        ENDPOINT_ADD, endpoint_form(provider="nope", new_secret="s")
    )

    assert response.context["adminform"].form.errors["provider"]


@pytest.mark.django_db
def test_endpoint_change_page_lists_recent_rejections(admin_client):
    endpoint = make_endpoint(slug="shop")
    Rejection.objects.create(
        endpoint=endpoint, reason="signature_mismatch", source_ip="192.0.2.9"
    )

    content = admin_client.get(change_url(endpoint)).content.decode()

    assert "signature_mismatch from 192.0.2.9" in content


@pytest.mark.django_db
def test_endpoint_delete_confirmation_counts_events_instead_of_listing_them(
    admin_client,
):
    endpoint = make_endpoint(slug="shop")
    make_events(endpoint, 30)
    url = reverse("admin:webhooks_endpoint_delete", args=[endpoint.pk])

    content = admin_client.get(url).content.decode()
    admin_client.post(url, {"post": "yes"})

    assert "30" in content
    assert "bulk-1" not in content
    assert not Event.objects.exists()
