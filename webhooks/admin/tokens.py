"""API tokens in the admin: created here and shown once, revoked by an action."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webhooks.admin.changelists import CheckedListAdmin
from webhooks.api import tokens
from webhooks.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(CheckedListAdmin[ApiToken]):
    list_display = [
        "name",
        "prefix",
        "user",
        "scope",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    actions = ["revoke_tokens"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        if obj is None:
            return ["user", "name", "scope"]
        return ["user", "name", "scope", *self.readonly_fields]

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiToken | None = None
    ) -> Any:
        # A token's owner and scope are fixed at creation: issue a new one instead.
        if obj is None:
            return []
        return ["user", "scope", *self.readonly_fields]

    def save_model(
        self, request: HttpRequest, obj: ApiToken, form: Any, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, raw = tokens.issue(obj.user, obj.name, obj.scope)
        obj.pk = token.pk
        obj.prefix, obj.key_hash, obj.created_at = (
            token.prefix,
            token.key_hash,
            token.created_at,
        )
        # The one time the token is shown; only its hash is kept.
        messages.warning(
            request,
            f"API token for {obj.user}: {raw} (copy it now: it is not shown again)",
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = sum(tokens.revoke(token) for token in queryset)
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
