"""Endpoints in the admin: their URL, recent traffic, and write-only secrets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from webhooks.admin.changelists import CheckedListAdmin
from webhooks.admin.forms import EndpointForm
from webhooks.api.links import endpoint_url
from webhooks.models import Endpoint, EndpointSecret, Event, Rejection
from webhooks.processing import pausing

#: The window of the "events (24h)" column.
RECENT = timedelta(hours=24)
#: Rejections listed on the change page; the rest are one click away.
REJECTIONS_SHOWN = 10

SETTINGS_FIELDS = (
    "slug",
    "provider",
    "is_active",
    "tolerance_seconds",
    "allowed_networks",
    "options",
    "event_types",
)
#: Pausing: the state is changed by the list's actions, the command or the live
#: page (which also wake the workers on resume), so it is read-only here.
PAUSE_FIELDS = ("paused", "paused_reason", "paused_at", "pause_after_failures")
ACTIVITY_FIELDS = (
    "rejected_count",
    "last_rejected_at",
    "recent_rejections",
    "created_at",
    "updated_at",
)


@admin.register(Endpoint)
class EndpointAdmin(CheckedListAdmin[Endpoint]):
    form = EndpointForm
    list_display = [
        "slug",
        "provider",
        "is_active",
        "url",
        "events_24h",
        "rejected_count",
        "paused",
    ]
    list_filter = ["provider", "is_active", "paused"]
    search_fields = ["slug"]
    readonly_fields = [
        "url",
        "secret_list",
        "paused",
        "paused_reason",
        "paused_at",
        *ACTIVITY_FIELDS,
    ]
    actions = ["pause_endpoints", "resume_endpoints"]

    def get_fieldsets(self, request: HttpRequest, obj: Endpoint | None = None) -> Any:
        if obj is None:
            return [
                (None, {"fields": SETTINGS_FIELDS}),
                ("Secret", {"fields": ["new_secret", "generate_secret"]}),
            ]
        return [
            (None, {"fields": ["url", *SETTINGS_FIELDS]}),
            (
                "Secrets",
                {
                    "fields": [
                        "secret_list",
                        "new_secret",
                        "generate_secret",
                        "grace_hours",
                    ]
                },
            ),
            ("Pause", {"fields": PAUSE_FIELDS}),
            ("Activity", {"fields": ACTIVITY_FIELDS}),
        ]

    @admin.action(
        description="Pause processing of selected endpoints", permissions=["change"]
    )
    def pause_endpoints(
        self, request: HttpRequest, queryset: QuerySet[Endpoint]
    ) -> None:
        who = request.user.get_username() if request.user.is_authenticated else ""
        paused = [
            endpoint.slug
            for endpoint in queryset
            if pausing.pause(endpoint, f"paused in the admin by {who}".strip())
        ]
        self.message_user(
            request,
            f"Paused {len(paused)} endpoint(s): deliveries are stored and answered, "
            "handlers wait until resumed.",
            messages.SUCCESS,
        )

    @admin.action(
        description="Resume processing of selected endpoints", permissions=["change"]
    )
    def resume_endpoints(
        self, request: HttpRequest, queryset: QuerySet[Endpoint]
    ) -> None:
        resumed = [endpoint.slug for endpoint in queryset if pausing.resume(endpoint)]
        self.message_user(
            request,
            f"Resumed {len(resumed)} endpoint(s); their waiting events run in order.",
            messages.SUCCESS,
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Endpoint]:
        # A correlated count rather than Count() over a join: the join would
        # aggregate every event ever received on each load of the list, while
        # the subquery reads only the last day's rows for the endpoints shown.
        recent = (
            Event.objects.filter(
                endpoint=OuterRef("pk"), received_at__gte=timezone.now() - RECENT
            )
            .order_by()
            .values("endpoint")
            .annotate(count=Count("pk"))
            .values("count")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                events_24h=Coalesce(Subquery(recent, output_field=IntegerField()), 0)
            )
        )

    @admin.display(description="URL for the provider")
    def url(self, obj: Endpoint) -> str:
        return endpoint_url(obj)

    @admin.display(description="events (24h)", ordering="events_24h")
    def events_24h(self, obj: Endpoint) -> int:
        return int(getattr(obj, "events_24h", 0))

    @admin.display(description="Secrets")
    def secret_list(self, obj: Endpoint) -> SafeString | str:
        # States only: no value and no fragment of one is ever rendered.
        secrets = list(obj.secrets.all())
        if not secrets:
            return "None."
        rows = ((secret.pk, secret_state(secret)) for secret in secrets)
        return format_html_join(mark_safe("<br>"), "#{}: {}", rows)

    @admin.display(description="Recent rejections")
    def recent_rejections(self, obj: Endpoint) -> SafeString | str:
        rejections = list(obj.rejections.all()[:REJECTIONS_SHOWN])
        if not rejections:
            return "None."
        rows = (
            (r.reason, r.source_ip or "-", formats.localize(timezone.localtime(r.at)))
            for r in rejections
        )
        listing = format_html_join(mark_safe("<br>"), "{} from {} at {}", rows)
        link = (
            reverse("admin:webhooks_rejection_changelist")
            + f"?endpoint__id__exact={obj.pk}"
        )
        return format_html('{}<br><a href="{}">All kept rejections</a>', listing, link)

    def save_model(
        self, request: HttpRequest, obj: Endpoint, form: Any, change: Any
    ) -> None:
        super().save_model(request, obj, form, change)
        secret, generated = form.chosen_secret()
        if secret is None:
            return
        if change:
            obj.rotate_secret(secret, form.grace())
        else:
            obj.secrets.create(value=secret)
        if generated:
            # The only place a secret is ever shown: once, to the user who made it.
            messages.success(
                request,
                f'Secret of "{obj.slug}": {secret} — copy it into the '
                "provider's dashboard now; it will not be shown again.",
            )

    def get_deleted_objects(
        self, objs: Sequence[Endpoint] | QuerySet[Endpoint], request: HttpRequest
    ) -> tuple[list[Any], dict[Any, Any], set[Any], list[Any]]:
        # Django's default lists every related row, loading each event with its
        # body: with a million events the confirmation page never renders.
        # Counts say the same thing in three queries.
        endpoints = list(objs)
        related = {"events": Event, "rejections": Rejection, "secrets": EndpointSecret}
        counts = {"endpoints": len(endpoints)}
        for label, model in related.items():
            counts[label] = model._default_manager.filter(
                endpoint__in=endpoints
            ).count()
        perms_needed = {
            model._meta.verbose_name
            for model in (Endpoint, *related.values())
            if not request.user.has_perm(f"webhooks.delete_{model._meta.model_name}")
        }
        return [str(endpoint) for endpoint in endpoints], counts, perms_needed, []


def secret_state(secret: EndpointSecret) -> str:
    if secret.expires_at is None:
        return "current"
    when = formats.localize(timezone.localtime(secret.expires_at))
    return (
        f"valid until {when}"
        if secret.expires_at > timezone.now()
        else f"expired {when}"
    )
