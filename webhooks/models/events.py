"""Stored events and the history of their handler runs."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from webhooks.models.endpoints import Endpoint

#: Events still owed a handler run (the queue's and the ordering index's condition).
OPEN = Q(status__in=["pending", "retrying", "processing"])


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
                condition=OPEN,
            ),
            # Ordering: "is an earlier event of this key still open?" is one probe
            # of this index, whatever the key's history.
            models.Index(
                fields=["ordering_key", "id"],
                name="webhooks_event_ordering",
                condition=~Q(ordering_key="") & OPEN,
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
