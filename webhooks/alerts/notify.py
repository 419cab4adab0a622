"""The built-in notifier: ``mail_admins`` by default, or a POST to a URL of yours.

``WEBHOOKS_ALERT_NOTIFIER`` chooses: ``"mail_admins"``, ``"webhook"`` (JSON to
``WEBHOOKS_ALERT_WEBHOOK_URL``), a dotted path to a callable taking a
:class:`Notice`, or None for no notices (the signals are still sent).

Debounced per endpoint, across processes, by conditional UPDATEs of the
endpoint row: one "unhealthy" notice per ``WEBHOOKS_ALERT_REPEAT_SECONDS`` at
most, its "resolved" notice when the endpoint recovers (only for a notice that
went out), and one "dead events" notice per endpoint per the same period.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from django.core.mail import mail_admins
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from webhooks import signals
from webhooks.conf import conf
from webhooks.models import Endpoint, Event

logger = logging.getLogger("webhooks")

TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Notice:
    #: "unhealthy", "resolved" or "dead".
    kind: str
    endpoint: str
    provider: str
    subject: str
    message: str
    failure_rate: float | None = None
    event_id: int | None = None
    at: str = field(default_factory=lambda: timezone.now().isoformat())


def send(notice: Notice) -> None:
    """Hand ``notice`` to the configured notifier; a failing notifier is logged, never raised."""
    chosen = conf.ALERT_NOTIFIER
    try:
        if not chosen:
            return
        if chosen == "mail_admins":
            mail_admins(notice.subject, notice.message, fail_silently=False)
        elif chosen == "webhook":
            post(notice)
        else:
            import_string(chosen)(notice)
    except Exception:
        logger.exception("Alert notice %r could not be sent", notice.subject)


def post(notice: Notice) -> None:
    url = conf.ALERT_WEBHOOK_URL
    if not url:
        logger.error(
            "WEBHOOKS_ALERT_NOTIFIER is 'webhook' but WEBHOOKS_ALERT_WEBHOOK_URL is empty"
        )
        return
    response = httpx.post(url, json=asdict(notice), timeout=TIMEOUT_SECONDS)
    response.raise_for_status()


def _since_repeat() -> Any:
    return timezone.now() - timedelta(seconds=conf.ALERT_REPEAT_SECONDS)


def on_unhealthy(
    sender: type, endpoint: Endpoint, failure_rate: float, **kwargs: Any
) -> None:
    now = timezone.now()
    opened = (
        Endpoint.objects.filter(pk=endpoint.pk, alert_open=False)
        .filter(Q(alerted_at__isnull=True) | Q(alerted_at__lte=_since_repeat()))
        .update(alert_open=True, alerted_at=now)
    )
    if not opened:
        return
    percent = f"{failure_rate:.0%}"
    send(
        Notice(
            kind="unhealthy",
            endpoint=endpoint.slug,
            provider=endpoint.provider,
            failure_rate=failure_rate,
            subject=f"Webhook endpoint {endpoint.slug}: {percent} of handler runs failing",
            message=(
                f"The handlers of endpoint {endpoint.slug} ({endpoint.provider}) failed "
                f"{percent} of their runs over the last {conf.ALERT_WINDOW_SECONDS:g} s. "
                "Deliveries are still stored; failed events retry with backoff and can "
                "be replayed from the admin once the cause is fixed. You will get a "
                "resolved notice when it recovers."
            ),
        )
    )


def on_recovered(sender: type, endpoint: Endpoint, **kwargs: Any) -> None:
    closed = Endpoint.objects.filter(pk=endpoint.pk, alert_open=True).update(
        alert_open=False
    )
    if not closed:
        return
    send(
        Notice(
            kind="resolved",
            endpoint=endpoint.slug,
            provider=endpoint.provider,
            subject=f"Resolved: webhook endpoint {endpoint.slug} is healthy again",
            message=(
                f"The handlers of endpoint {endpoint.slug} ({endpoint.provider}) "
                "succeed again."
            ),
        )
    )


def on_dead(sender: type, event: Event, **kwargs: Any) -> None:
    endpoint = event.endpoint
    first = (
        Endpoint.objects.filter(pk=endpoint.pk)
        .filter(
            Q(dead_alerted_at__isnull=True) | Q(dead_alerted_at__lte=_since_repeat())
        )
        .update(dead_alerted_at=timezone.now())
    )
    if not first:
        return
    send(
        Notice(
            kind="dead",
            endpoint=endpoint.slug,
            provider=endpoint.provider,
            event_id=event.pk,
            subject=f"Webhook endpoint {endpoint.slug}: event {event.pk} failed for good",
            message=(
                f"Event {event.pk} ({event.event_type or 'no type'}) of endpoint "
                f"{endpoint.slug} reached failed after {event.attempts} attempt(s):\n\n"
                f"{event.last_error[:2000]}\n\n"
                "Further dead events of this endpoint are not announced for "
                f"{conf.ALERT_REPEAT_SECONDS:g} s; the admin lists them (status failed)."
            ),
        )
    )


def connect() -> None:
    uid = "webhooks.alerts.notify"
    signals.endpoint_unhealthy.connect(on_unhealthy, dispatch_uid=f"{uid}.unhealthy")
    signals.endpoint_recovered.connect(on_recovered, dispatch_uid=f"{uid}.recovered")
    signals.event_dead.connect(on_dead, dispatch_uid=f"{uid}.dead")
