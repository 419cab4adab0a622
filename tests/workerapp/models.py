from __future__ import annotations

from django.db import models


class Call(models.Model):
    """One handler call; no unique constraint, so a double run would show as two rows."""

    event_id = models.BigIntegerField()
    pid = models.IntegerField()
    attempt = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"event {self.event_id} attempt {self.attempt} in {self.pid}"
