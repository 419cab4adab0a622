"""Every state-changing admin request without a CSRF token is refused (403) and changes nothing.

The URLs and actions are read from the admin registry, so a model or an action
added to the webhooks admin later is covered without being listed here.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.factories import make_endpoint, make_event
from webhooks.models import Rejection

pytestmark = pytest.mark.django_db


def webhooks_admins() -> list[tuple[type[Model], admin.ModelAdmin[Any]]]:
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "webhooks"
    ]


def snapshot() -> dict[str, list[dict[str, Any]]]:
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model, _ in webhooks_admins()
    }


@pytest.fixture
def rows() -> None:
    endpoint = make_endpoint("gh", "github", "s3cret")
    make_event(endpoint, "d-1", status="failed")
    Rejection.objects.create(
        endpoint=endpoint, reason="signature_mismatch", headers={}, body_head=b"x"
    )


@pytest.fixture
def superuser() -> User:
    return User.objects.create_superuser("root", password="pw")


def posts(superuser: User) -> list[tuple[str, dict[str, Any]]]:
    """Every admin POST of the webhooks app: add, change, delete, each bulk action."""
    request = RequestFactory().get("/")
    request.user = superuser
    found: list[tuple[str, dict[str, Any]]] = [
        (reverse("admin:logout"), {}),
        (reverse("admin:password_change"), {}),
    ]
    for model, model_admin in webhooks_admins():
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        found.append((reverse(f"{info}_add"), {}))
        pks = list(model.objects.values_list("pk", flat=True)[:1])
        for pk in pks:
            found.append((reverse(f"{info}_change", args=[pk]), {}))
            found.append((reverse(f"{info}_delete", args=[pk]), {"post": "yes"}))
        for action in model_admin.get_actions(request):
            found.append(
                (
                    reverse(f"{info}_changelist"),
                    {"action": action, ACTION_CHECKBOX_NAME: pks, "index": 0},
                )
            )
    return found


def test_admin_posts_without_a_csrf_token_are_refused(rows, superuser) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    before = snapshot()
    requests = posts(superuser)
    actions = [data["action"] for _, data in requests if "action" in data]
    assert "replay_events" in actions  # the registry was read, actions included
    for url, data in requests:
        response = client.post(url, data)
        # Refused by CSRF, not by a permission check that happens to answer 403 too.
        assert response.status_code == 403, (url, data)
        assert b"CSRF verification failed" in response.content, (url, data)
    assert snapshot() == before
