"""Endpoints, the URLs deliveries arrive at, and the secrets that verify them."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from webhooks.models.fields import recorded_time
from webhooks.providers import get_provider
from webhooks.providers.base import KeySource, Provider

#: Paths under the webhooks prefix that belong to the app itself.
RESERVED_SLUGS = frozenset({"health", "api"})


def validate_not_reserved(slug: str) -> None:
    if slug in RESERVED_SLUGS:
        raise ValidationError(f"{slug!r} is reserved; choose another slug.")


class Endpoint(models.Model):
    slug = models.SlugField(
        max_length=100,
        unique=True,
        validators=[validate_not_reserved],
        help_text="Last part of the URL: /webhooks/<slug>/.",
    )
    provider = models.CharField(
        max_length=50, help_text="Id of the provider class that verifies deliveries."
    )
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Provider options, for the configurable providers.",
    )
    is_active = models.BooleanField(
        default=True, help_text="Inactive endpoints answer 404 and store nothing."
    )
    tolerance_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Allowed clock difference for signed timestamps; empty: the provider's default.",
    )
    allowed_networks = models.JSONField(
        default=list,
        blank=True,
        help_text="Source networks (CIDR) allowed to deliver; empty: any.",
    )
    rejected_count = models.PositiveBigIntegerField(
        default=0,
        editable=False,
        help_text="Deliveries refused since the endpoint was created.",
    )
    last_rejected_at = recorded_time()
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Event types to store, such as invoice.paid, or prefixes ending in *, "
            "such as invoice.*; empty: all. Others are verified, answered "
            '200 {"status": "ignored"} and not stored.'
        ),
    )
    paused = models.BooleanField(
        default=False,
        help_text="Deliveries are still verified, stored and answered; handlers wait until resumed.",
    )
    paused_at = recorded_time()
    paused_reason = models.CharField(
        max_length=255,
        blank=True,
        help_text="Why the endpoint is paused (set by an operator or by the automatic pause).",
    )
    pause_after_failures = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Pause automatically after this many handler runs in a row fail; empty: never.",
    )
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    unhealthy_since = recorded_time(
        help_text="Set while the handlers' failure rate is over the alert threshold."
    )
    alert_open = models.BooleanField(
        default=False,
        editable=False,
        help_text="An unhealthy notice went out and its resolved notice has not yet.",
    )
    alerted_at = recorded_time()
    dead_alerted_at = recorded_time()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        indexes = [
            # The claim query leaves paused endpoints' events out: this names them
            # without reading the table.
            models.Index(
                fields=["id"], name="webhooks_endpoint_paused", condition=Q(paused=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.slug} ({self.provider})"

    def get_provider(self, *, keys: KeySource | None = None) -> Provider:
        """This endpoint's provider; ``keys``: where it may fetch published keys."""
        return get_provider(self.provider, self.options, keys=keys)

    def tolerance(self, provider: Provider) -> int | None:
        if self.tolerance_seconds is not None:
            return self.tolerance_seconds
        return provider.default_tolerance

    def valid_secrets(self) -> list[str]:
        """Secrets that verify deliveries now, newest first (uses prefetched ``secrets``)."""
        now = timezone.now()
        secrets = sorted(self.secrets.all(), key=lambda secret: secret.pk, reverse=True)
        return [s.value for s in secrets if s.expires_at is None or s.expires_at > now]

    def allows(self, source_ip: str | None) -> bool:
        if not self.allowed_networks:
            return True
        if source_ip is None:
            return False
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            return False
        for network in self.allowed_networks:
            try:
                if address in ipaddress.ip_network(network, strict=False):
                    return True
            except (TypeError, ValueError):
                continue  # Reported by check webhooks.E004; never widens access.
        return False

    def accepts_type(self, event_type: str) -> bool:
        """Whether the allowlist (``event_types``) lets an event of this type be stored."""
        if not self.event_types:
            return True
        for allowed in self.event_types:
            if not isinstance(allowed, str):
                continue  # reported by the admin form; never widens the list
            if allowed.endswith("*"):
                if event_type.startswith(allowed[:-1]):
                    return True
            elif event_type == allowed:
                return True
        return False

    def rotate_secret(
        self, value: str, grace: timedelta = timedelta(hours=24)
    ) -> EndpointSecret:
        """Make ``value`` the current secret; earlier ones stay valid for ``grace`` at most."""
        cutoff = timezone.now() + grace
        with transaction.atomic():
            self.secrets.filter(
                Q(expires_at__isnull=True) | Q(expires_at__gt=cutoff)
            ).update(expires_at=cutoff)
            return self.secrets.create(value=value)


class EndpointSecret(models.Model):
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="secrets"
    )
    value = models.CharField(max_length=512, help_text="Never shown once saved.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Empty for the current secret; set when rotated out.",
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        state = (
            "current"
            if self.expires_at is None
            else f"valid until {self.expires_at:%Y-%m-%d %H:%M}"
        )
        return f"secret #{self.pk} ({state})"
