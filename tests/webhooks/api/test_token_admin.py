"""API tokens in the admin: the token is shown once on creation, and revoked by an action."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from webhooks.api import tokens
from webhooks.models import ApiToken

pytestmark = pytest.mark.django_db

TOKENS = reverse("admin:webhooks_apitoken_changelist")
TOKEN_ADD = reverse("admin:webhooks_apitoken_add")


@pytest.fixture
def admin_client_() -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def shown_token(response) -> str:
    texts = [str(message) for message in response.context["messages"]]
    words = [word for text in texts for word in text.split()]
    return next(word for word in words if word.startswith(tokens.MARK))


def test_add_shows_the_token_once_and_stores_its_hash(admin_client_: Client) -> None:
    owner = User.objects.create_superuser("ci", "ci@example.com", "pw")

    response = admin_client_.post(
        TOKEN_ADD, {"user": owner.pk, "name": "deploy", "scope": "replay"}, follow=True
    )

    raw = shown_token(response)
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.scope) == (owner, "deploy", "replay")
    assert token.key_hash == tokens.hash_token(raw)
    assert tokens.authenticate(raw, replay=True) == token
    page = admin_client_.get(reverse("admin:webhooks_apitoken_change", args=[token.pk]))
    assert raw not in page.content.decode()
    assert token.prefix in page.content.decode()
    assert raw not in admin_client_.get(TOKENS).content.decode()


def test_revoke_action_refuses_the_selected_tokens(admin_client_: Client) -> None:
    owner = User.objects.get(username="root")
    kept, kept_raw = tokens.issue(owner, "kept")
    gone, gone_raw = tokens.issue(owner, "gone")

    admin_client_.post(
        TOKENS,
        {"action": "revoke_tokens", ACTION_CHECKBOX_NAME: [gone.pk], "index": 0},
        follow=True,
    )

    assert tokens.authenticate(gone_raw) == tokens.INVALID
    assert tokens.authenticate(kept_raw) == kept
