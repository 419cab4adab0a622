from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

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
    last_rejected_at = models.DateTimeField(null=True, blank=True, editable=False)
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
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
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
    unhealthy_since = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Set while the handlers' failure rate is over the alert threshold.",
    )
    alert_open = models.BooleanField(
        default=False,
        editable=False,
        help_text="An unhealthy notice went out and its resolved notice has not yet.",
    )
    alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    dead_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
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


class Event(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        SUCCEEDED = "succeeded"
        RETRYING = "retrying"
        FAILED = "failed"
        SKIPPED = "skipped"

    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="events"
    )
    provider = models.CharField(
        max_length=50, help_text="The endpoint's provider at receipt."
    )
    delivery_id = models.CharField(
        max_length=255,
        help_text="The provider's id of the delivery (dedup key), or sha256: of the body.",
    )
    event_type = models.CharField(max_length=255, blank=True)
    body = models.BinaryField(help_text="The request body, byte for byte.")
    size = models.PositiveIntegerField(
        default=0, help_text="Length of the body in bytes."
    )
    headers = models.JSONField(
        default=dict, help_text="Request headers; Cookie and Authorization redacted."
    )
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    payload = models.JSONField(
        null=True,
        blank=True,
        help_text="Parsed JSON or form body; empty when it does not parse.",
    )
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a pending or retrying event is due; while processing, when its lease ends.",
    )
    claimed_by = models.CharField(
        max_length=100,
        blank=True,
        help_text="The worker holding the lease while processing.",
    )
    ordering_key = models.CharField(
        max_length=255,
        blank=True,
        help_text="Events with the same key are processed one at a time, in received order.",
    )
    completed_handlers = models.JSONField(
        default=list,
        blank=True,
        help_text="Handlers that have succeeded for this event.",
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    trace_parent = models.CharField(
        max_length=100,
        blank=True,
        help_text="W3C traceparent of the ingest span, so processing joins its trace.",
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "delivery_id"],
                name="webhooks_event_unique_delivery",
            ),
        ]
        indexes = [
            models.Index(fields=["received_at"], name="webhooks_event_received"),
            models.Index(fields=["endpoint", "-id"], name="webhooks_event_endpoint"),
            models.Index(fields=["status", "-id"], name="webhooks_event_status"),
            # Admin search: delivery ids across endpoints, and event-type prefixes
            # (pattern ops let PostgreSQL use the index for LIKE 'x%' in any collation).
            models.Index(fields=["delivery_id"], name="webhooks_event_delivery"),
            models.Index(
                fields=["event_type"],
                name="webhooks_event_type",
                opclasses=["varchar_pattern_ops"],
            ),
            # The queue: due events, and processing ones whose lease has run out,
            # in claim order; with the id in the key a claim reads only the rows
            # it takes, even when a burst shares one next_attempt_at.
            models.Index(
                fields=["next_attempt_at", "id"],
                name="webhooks_event_due",
                condition=Q(status__in=["pending", "retrying", "processing"]),
            ),
            # Ordering: "is an earlier event of this key still open?" is one probe
            # of this index, whatever the key's history.
            models.Index(
                fields=["ordering_key", "id"],
                name="webhooks_event_ordering",
                condition=~Q(ordering_key="")
                & Q(status__in=["pending", "retrying", "processing"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type or '-'} {self.delivery_id[:12]}"


class Attempt(models.Model):
    """One run of an event's handlers: the history that replays add to."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"
        RELEASED = "released"

    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField(
        help_text="The event's attempt count at this run."
    )
    worker = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome, blank=True)
    error = models.TextField(
        blank=True, help_text="Exception type, message and traceback, bounded."
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["event", "-id"], name="webhooks_attempt_event")]

    def __str__(self) -> str:
        return f"attempt {self.number} of event {self.event_id}: {self.outcome or 'running'}"


class Rejection(models.Model):
    """A refused delivery, kept briefly for diagnosis (the newest per endpoint only)."""

    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="rejections"
    )
    reason = models.CharField(max_length=50)
    headers = models.JSONField(
        default=dict, help_text="Cookie and Authorization redacted."
    )
    body_head = models.BinaryField(help_text="The first 4 KiB of the body.")
    body_size = models.PositiveIntegerField(default=0)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["endpoint", "-id"], name="webhooks_rejection_endpoint")
        ]

    def __str__(self) -> str:
        return f"{self.endpoint.slug}: {self.reason} at {self.at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def trim(cls, endpoint: Endpoint, keep: int) -> None:
        oldest_kept = (
            cls.objects.filter(endpoint=endpoint)
            .order_by("-id")
            .values_list("id", flat=True)
        )[keep - 1 : keep]
        cut = list(oldest_kept)
        if cut:
            cls.objects.filter(endpoint=endpoint, id__lt=cut[0]).delete()


class Tally(models.Model):
    """What happened at an endpoint in one minute: the live page's rates and chart.

    Server and worker processes count in memory and add their counts here every
    few seconds (:mod:`webhooks.observability.tallies`), so the figures hold
    across processes and restarts at the cost of one statement per flush.
    """

    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="tallies"
    )
    minute = models.DateTimeField(help_text="Start of the minute (UTC).")
    received = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(
        default=0, help_text="Handler runs that failed (retried or dead)."
    )
    rejected = models.PositiveIntegerField(default=0)
    ignored = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "minute"], name="webhooks_tally_minute"
            )
        ]
        indexes = [models.Index(fields=["minute"], name="webhooks_tally_at")]

    def __str__(self) -> str:
        return f"{self.endpoint_id} at {self.minute:%Y-%m-%d %H:%M}"


class ApiToken(models.Model):
    """A bearer token for the events API, the stream and the relay, acting as its user.

    Only a SHA-256 hash of the token is stored: the token is high-entropy random
    text, so a fast hash is enough (nothing to brute-force), and a stolen
    database yields no usable token. ``prefix`` identifies it in lists.
    """

    class Scope(models.TextChoices):
        READ = "read", "read"
        REPLAY = "replay", "read and replay"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="webhook_tokens",
    )
    name = models.CharField(max_length=100, help_text="What the token is for.")
    scope = models.CharField(
        max_length=10,
        choices=Scope,
        default=Scope.READ,
        help_text="Replay also needs the user's webhooks.change_event permission.",
    )
    prefix = models.CharField(
        max_length=16, editable=False, help_text="The token's first characters."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
