"""Per-minute counts of what happened at each endpoint."""

from __future__ import annotations

from django.db import models

from webhooks.models.endpoints import Endpoint


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
