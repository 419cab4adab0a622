"""Refused deliveries, kept briefly for diagnosis."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from webhooks.models.endpoints import Endpoint


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
