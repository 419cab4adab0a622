from __future__ import annotations

from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    label = "realtime"
    verbose_name = "Webhooks live dashboard"

    def ready(self) -> None:
        from realtime import (  # noqa: F401  (checks registers itself)
            broadcast,
            checks,
            streams,
        )

        broadcast.connect()
        streams.connect()
