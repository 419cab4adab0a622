"""Stored events, read-only, in a list that stays fast with millions of rows."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from webhooks.admin import display
from webhooks.admin.attempts import AttemptInline
from webhooks.admin.changelists import CheckedChangeList, CheckedListAdmin
from webhooks.admin.pagination import CappedPaginator
from webhooks.api.batches import id_batches
from webhooks.models import Event
from webhooks.processing import replay
from webhooks.providers import provider_ids

#: Columns the list never shows; a body alone may run to megabytes.
LIST_DEFERRED = ("body", "headers", "payload", "last_error")
#: How many of the newest events the event type filter draws its choices from.
TYPE_SAMPLE = 1000

DELIVERY_FIELDS = (
    "endpoint",
    "provider",
    "delivery_id",
    "event_type",
    "source_ip",
    "received_at",
)
PROCESSING_FIELDS = (
    "status",
    "attempts",
    "next_attempt_at",
    "claimed_by",
    "processed_at",
    "error",
)
CONTENT_FIELDS = ("payload_json", "headers_json", "body_size", "body_text", "body_hex")


class ProviderFilter(admin.SimpleListFilter):
    # Choices come from the registry, not from SELECT DISTINCT over every event.
    title = "provider"
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(provider_id, provider_id) for provider_id in provider_ids()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(provider=self.value()) if self.value() else queryset


class EventTypeFilter(admin.SimpleListFilter):
    # The default filter runs SELECT DISTINCT over the whole table on every page
    # load; the types of the newest events cover what people look for.
    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        newest = Event.objects.order_by("-id").values_list("event_type", flat=True)[
            :TYPE_SAMPLE
        ]
        types = {event_type for event_type in newest if event_type}
        if self.value():
            types.add(str(self.value()))
        return [(event_type, event_type) for event_type in sorted(types)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(event_type=self.value()) if self.value() else queryset


class EventChangeList(CheckedChangeList):
    def get_queryset(
        self, request: HttpRequest, exclude_parameters: Any = None
    ) -> QuerySet[Any]:
        return super().get_queryset(request, exclude_parameters).defer(*LIST_DEFERRED)


@admin.register(Event)
class EventAdmin(CheckedListAdmin[Event]):
    list_display = [
        "id", "endpoint", "provider", "event_type", "delivery_id", "status", "attempts", "received_at",
    ]  # fmt: skip
    list_filter = ["endpoint", ProviderFilter, "status", EventTypeFilter, "received_at"]
    # Case-sensitive lookups on purpose: "=" and "^" mean iexact and istartswith,
    # which compare UPPER() values and so cannot use an index on PostgreSQL.
    search_fields = ["delivery_id__exact", "event_type__startswith"]
    search_help_text = "The exact delivery id, or the beginning of an event type."
    list_select_related = ["endpoint"]
    ordering = ["-id"]
    # Only indexed orderings: sorting a million rows by attempts is a full scan.
    sortable_by = ["id", "received_at"]
    paginator = CappedPaginator
    show_full_result_count = False
    # Facets count every filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER
    # No bulk delete over a million rows (see get_actions); deleting one event
    # stays possible.
    actions = ["replay_events"]
    inlines = [AttemptInline]
    readonly_fields = [*DELIVERY_FIELDS, *PROCESSING_FIELDS, *CONTENT_FIELDS]
    fieldsets = [
        (None, {"fields": DELIVERY_FIELDS}),
        ("Processing", {"fields": PROCESSING_FIELDS}),
        ("Content", {"fields": CONTENT_FIELDS}),
    ]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EventChangeList

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return super().get_queryset(request).select_related("endpoint")

    def action_checkbox(self, obj: Event) -> SafeString:
        # The input Django's widget renders, written out: a widget template per
        # row was the largest single cost of rendering a page of the list.
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            ACTION_CHECKBOX_NAME,
            obj.pk,
            label,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # Events come from providers only.

    def has_change_permission(
        self, request: HttpRequest, obj: Event | None = None
    ) -> bool:
        return False  # The stored delivery is evidence; editing it would falsify it.

    def get_actions(
        self, request: HttpRequest, action_location: Any = None
    ) -> dict[str, Any]:
        # Django 6.1 passes action_location (and warns about overrides without
        # it); Django 5.2 does not know the parameter.
        if action_location is None:
            actions = super().get_actions(request)
        else:
            actions = super().get_actions(request, action_location=action_location)  # type: ignore[call-arg]
        actions.pop("delete_selected", None)
        return actions

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # Replay changes the event's processing state, not the stored delivery,
        # so it needs change_event even though the change form stays read-only.
        return request.user.has_perm("webhooks.change_event")

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay_events(self, request: HttpRequest, queryset: QuerySet[Event]) -> None:
        queued, busy = 0, []
        # In batches of ids: "select all" may cover millions of events. Events
        # deleted since the list was shown are simply not replayed.
        for batch in id_batches(queryset):
            outcome = replay.replay_many(batch)
            queued += len(outcome.queued)
            busy.extend(outcome.busy)
        self.message_user(
            request, f"Queued {queued} event(s) for replay.", messages.SUCCESS
        )
        if busy:
            shown = ", ".join(f"#{event_id}" for event_id in busy[:20])
            self.message_user(
                request,
                f"Skipped {len(busy)} event(s) being processed right now ({shown}"
                f"{', ...' if len(busy) > 20 else ''}); replay them once they finish.",
                messages.WARNING,
            )

    @admin.display(description="last error")
    def error(self, obj: Event) -> SafeString | str:
        return display.pre(obj.last_error) if obj.last_error else "-"

    @admin.display(description="payload")
    def payload_json(self, obj: Event) -> SafeString:
        return display.json_block(obj.payload)

    @admin.display(description="headers")
    def headers_json(self, obj: Event) -> SafeString:
        return display.json_block(obj.headers)

    @admin.display(description="body size")
    def body_size(self, obj: Event) -> str:
        return display.size(obj.size)

    @admin.display(description="body (UTF-8)")
    def body_text(self, obj: Event) -> SafeString:
        return display.body_text(display.as_bytes(obj.body))

    @admin.display(description="body (hex)")
    def body_hex(self, obj: Event) -> SafeString | str:
        return display.body_hex(display.as_bytes(obj.body))
