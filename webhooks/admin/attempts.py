"""An event's attempts, shown read-only on its change page: the history replays add to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.safestring import SafeString

from webhooks.admin import display
from webhooks.models import Attempt

ATTEMPT_FIELDS = (
    "number",
    "worker",
    "started_at",
    "finished_at",
    "outcome",
    "error_text",
)

# Generic only in django-stubs; django-stubs-ext is not a runtime dependency.
if TYPE_CHECKING:
    AttemptInlineBase = admin.TabularInline[Attempt, Any]
else:
    AttemptInlineBase = admin.TabularInline


class AttemptInline(AttemptInlineBase):
    model = Attempt
    verbose_name_plural = "attempts (newest first)"
    fields = ATTEMPT_FIELDS
    readonly_fields = ATTEMPT_FIELDS
    ordering = ["-id"]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Attempts are part of the event's record: whoever may see the event sees
        # them, without a separate view_attempt permission.
        return request.user.has_perm("webhooks.view_event") or request.user.has_perm(
            "webhooks.change_event"
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="error")
    def error_text(self, obj: Attempt) -> SafeString | str:
        return display.pre(obj.error) if obj.error else "-"
