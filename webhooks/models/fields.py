"""Field shapes several models share."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import models
from django.db.models.expressions import Combinable


def recorded_time(
    **options: Any,
) -> models.DateTimeField[str | datetime | date | Combinable | None, datetime | None]:
    """A moment the app records when it happens: empty until then, never typed in."""
    return models.DateTimeField(null=True, blank=True, editable=False, **options)
