"""Refused deliveries, read-only: what was sent, so a misconfigured secret can be diagnosed."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString

from webhooks.admin import display
from webhooks.admin.changelists import CheckedListAdmin
from webhooks.models import Rejection

DETAIL_FIELDS = ("endpoint", "reason", "source_ip", "at", "body_size")
CONTENT_FIELDS = ("headers_json", "body_text", "body_hex")


@admin.register(Rejection)
class RejectionAdmin(CheckedListAdmin[Rejection]):
    list_display = ["endpoint", "reason", "source_ip", "at", "body_size"]
    list_filter = ["endpoint", "reason"]
    list_select_related = ["endpoint"]
    actions = None
    readonly_fields = [*DETAIL_FIELDS, *CONTENT_FIELDS]
    fieldsets = [
        (None, {"fields": DETAIL_FIELDS}),
        ("Content", {"fields": CONTENT_FIELDS}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rejection]:
        return super().get_queryset(request).select_related("endpoint")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Rejection | None = None
    ) -> bool:
        return False

    @admin.display(description="headers")
    def headers_json(self, obj: Rejection) -> SafeString:
        return display.json_block(obj.headers)

    @admin.display(description="body head (UTF-8)")
    def body_text(self, obj: Rejection) -> SafeString:
        return display.body_text(display.as_bytes(obj.body_head))

    @admin.display(description="body head (hex)")
    def body_hex(self, obj: Rejection) -> SafeString | str:
        return display.body_hex(display.as_bytes(obj.body_head))
