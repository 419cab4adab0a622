from __future__ import annotations

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from webhooks import signals
        from webhooks.alerts import health, notify
        from webhooks.observability import metrics, receivers, tallies
        from webhooks.processing import handlers, pausing

        handlers.discover()
        signals.event_status_changed.connect(
            signals.announce_dead, dispatch_uid="webhooks.signals.announce_dead"
        )
        signals.event_status_changed.connect(
            health.outcome, dispatch_uid="webhooks.alerts.health.outcome"
        )
        notify.connect()
        signals.event_status_changed.connect(
            pausing.outcome, dispatch_uid="webhooks.processing.pausing.outcome"
        )
        tallies.connect()
        if metrics.enabled():
            receivers.connect()
