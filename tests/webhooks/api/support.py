"""Users and tokens for the API tests."""

from __future__ import annotations

from django.contrib.auth.models import Permission, User

from webhooks.api import tokens
from webhooks.models import ApiToken


def user_with(*codenames: str, username: str = "robot", **fields) -> User:
    user = User.objects.create_user(username, password="pw", **fields)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="webhooks", codename__in=codenames
        )
    )
    return user


def token_for(*codenames: str, scope: str = ApiToken.Scope.READ, **fields) -> str:
    user = user_with(*codenames, **fields)
    return tokens.issue(user, "tests", scope)[1]


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
