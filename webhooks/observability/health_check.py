"""A django-health-check (4.x) backend for the inbox's queue.

Add it to the checks of django-health-check's view::

    path("ht/", HealthCheckView.as_view(checks=[
        "health_check.checks.Database",
        ("webhooks.observability.health_check.WebhookQueue", {"max_lag_seconds": 300}),
    ])),

It fails (unavailable) when the oldest due event has waited longer than
``max_lag_seconds``, and warns when more than ``max_dead`` events are dead
(``None``: dead events never warn).
"""

from __future__ import annotations

import dataclasses

from asgiref.sync import sync_to_async
from django.db import DatabaseError
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from webhooks.models import Event
from webhooks.observability.collector import queue_lag_seconds


@dataclasses.dataclass
class WebhookQueue(HealthCheck):
    max_lag_seconds: float = 300.0
    max_dead: int | None = None

    async def run(self) -> None:
        try:
            lag, dead = await sync_to_async(self.measure)()
        except DatabaseError as error:
            raise ServiceUnavailable("the event table cannot be read") from error
        if lag > self.max_lag_seconds:
            raise ServiceUnavailable(
                f"the oldest due event has waited {lag:.0f} s "
                f"(more than {self.max_lag_seconds:g} s): are the workers running?"
            )
        if self.max_dead is not None and dead > self.max_dead:
            raise ServiceWarning(f"{dead} dead events (more than {self.max_dead})")

    def measure(self) -> tuple[float, int]:
        return (
            queue_lag_seconds(),
            Event.objects.filter(status=Event.Status.FAILED).count(),
        )
