"""The app's settings, read from Django settings.

Every read in the app goes through ``conf.<NAME>``. Values are kept after the
first read, because reading a setting the project does not define costs an
AttributeError inside Django's lazy settings each time (a noticeable share of
a delivery's CPU); ``setting_changed`` (sent by ``override_settings``) clears
them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

_read: dict[str, Any] = {}


def setting(name: str, default: Any) -> Any:
    """``getattr(settings, name, default)``, kept until a setting changes."""
    try:
        return _read[name]
    except KeyError:
        value = _read[name] = getattr(settings, name, default)
        return value


@receiver(setting_changed, dispatch_uid="webhooks.conf.setting_changed")
def _forget(**kwargs: Any) -> None:
    _read.clear()


class Settings:
    @property
    def MAX_BODY_BYTES(self) -> int:
        """Largest body accepted; larger deliveries answer 413 before the body is read."""
        return cast(int, setting("WEBHOOKS_MAX_BODY_BYTES", 5 * 1024 * 1024))

    @property
    def PROVIDERS(self) -> Mapping[str, str]:
        """Extra provider classes by id, as dotted paths; they may replace built-ins."""
        return cast(Mapping[str, str], setting("WEBHOOKS_PROVIDERS", {}))

    @property
    def PUBLIC_URL(self) -> str:
        """Scheme and host the providers call, such as ``https://hooks.example.com``.

        Used to print endpoint URLs and, for URL-signing providers (Twilio), as
        the exact origin the provider signed. Empty: built from the request.
        """
        return cast(str, setting("WEBHOOKS_PUBLIC_URL", "")).rstrip("/")

    @property
    def TRUSTED_PROXIES(self) -> Sequence[str]:
        """Networks (CIDR) of reverse proxies whose ``X-Forwarded-*`` headers are believed."""
        return cast(Sequence[str], setting("WEBHOOKS_TRUSTED_PROXIES", ()))

    @property
    def REJECTIONS_KEPT(self) -> int:
        """How many recent rejected deliveries are kept per endpoint."""
        return cast(int, setting("WEBHOOKS_REJECTIONS_KEPT", 100))

    @property
    def RATE_LIMIT_PER_ENDPOINT(self) -> tuple[int, float] | None:
        """``(requests, seconds)`` allowed per endpoint (all server processes, see ratelimit), or None."""
        return cast(
            "tuple[int, float] | None",
            setting("WEBHOOKS_RATE_LIMIT_PER_ENDPOINT", None),
        )

    @property
    def RATE_LIMIT_PER_SOURCE(self) -> tuple[int, float] | None:
        """``(requests, seconds)`` allowed per source IP (all server processes), or None."""
        return cast(
            "tuple[int, float] | None",
            setting("WEBHOOKS_RATE_LIMIT_PER_SOURCE", None),
        )

    @property
    def REJECTION_LIMIT(self) -> tuple[int, float] | None:
        """``(rejections, seconds)`` one source may cause at one endpoint before 429, or None.

        Past it, the source's deliveries to that endpoint are answered 429 before
        any verification or database write, until the bucket refills.
        """
        return cast(
            "tuple[int, float] | None",
            setting("WEBHOOKS_REJECTION_LIMIT", (20, 60.0)),
        )

    @property
    def RATE_LIMIT_CACHE(self) -> str | None:
        """The cache alias through which server processes share rate-limit counts."""
        return cast("str | None", setting("WEBHOOKS_RATE_LIMIT_CACHE", "default"))

    @property
    def RETRY_AFTER_SECONDS(self) -> int:
        """``Retry-After`` sent with 429 and 503 answers."""
        return cast(int, setting("WEBHOOKS_RETRY_AFTER_SECONDS", 30))

    @property
    def PROCESSING(self) -> str:
        """Who runs handlers: "inline" (the server process), "worker" (webhooks_worker),
        "tasks" (a Django task per event) or "celery" (a Celery task per event)."""
        return cast(str, setting("WEBHOOKS_PROCESSING", "inline"))

    @property
    def BATCH_SIZE(self) -> int:
        """Events a worker or the inline runner claims in one round trip."""
        return cast(int, setting("WEBHOOKS_BATCH_SIZE", 200))

    @property
    def BATCH_SECONDS(self) -> float:
        """Longest a batch runs before it commits what it has done (checked between events)."""
        return cast(float, setting("WEBHOOKS_BATCH_SECONDS", 0.1))

    @property
    def TASKS_BACKEND(self) -> str:
        """The ``TASKS`` alias that ``webhooks.tasks.process_event`` is enqueued on (tasks mode)."""
        return cast(str, setting("WEBHOOKS_TASKS_BACKEND", "default"))

    @property
    def SWEEP_AFTER_SECONDS(self) -> float:
        """tasks and celery modes: how long a due event may wait for its task before
        the sweep enqueues it again (a lost message, a retry come due)."""
        return cast(float, setting("WEBHOOKS_SWEEP_AFTER_SECONDS", 60.0))

    @property
    def MAX_ATTEMPTS(self) -> int:
        """Attempts before an event whose handler keeps failing is marked failed."""
        return cast(int, setting("WEBHOOKS_MAX_ATTEMPTS", 8))

    @property
    def RETRY_BASE_SECONDS(self) -> float:
        """Backoff before the first retry; it doubles with each attempt, jittered."""
        return cast(float, setting("WEBHOOKS_RETRY_BASE_SECONDS", 10.0))

    @property
    def RETRY_MAX_SECONDS(self) -> float:
        """Cap of the backoff between two attempts."""
        return cast(float, setting("WEBHOOKS_RETRY_MAX_SECONDS", 3600.0))

    @property
    def LEASE_SECONDS(self) -> float:
        """How long a claimed event is held; a live worker renews it, a dead one lets it lapse."""
        return cast(float, setting("WEBHOOKS_LEASE_SECONDS", 300.0))

    @property
    def POLL_SECONDS(self) -> float:
        """Safety-net poll of workers and the inline runner between wake-ups."""
        return cast(float, setting("WEBHOOKS_POLL_SECONDS", 2.0))

    @property
    def INLINE_THREADS(self) -> int:
        """Handler threads of the inline runner in each server process."""
        return cast(int, setting("WEBHOOKS_INLINE_THREADS", 2))

    @property
    def ERROR_CHARS(self) -> int:
        """Longest error (type, message, traceback) kept on an event."""
        return cast(int, setting("WEBHOOKS_ERROR_CHARS", 8000))

    @property
    def ENDPOINT_CACHE_SECONDS(self) -> float:
        """How long a server process keeps an endpoint and its secrets (0: not at all)."""
        return cast(float, setting("WEBHOOKS_ENDPOINT_CACHE_SECONDS", 2.0))

    @property
    def MAX_WAITING_COMMITS(self) -> int:
        """Verified deliveries a server process lets wait for a commit before answering 503."""
        return cast(int, setting("WEBHOOKS_MAX_WAITING_COMMITS", 2000))

    @property
    def API_SETTLE_SECONDS(self) -> float:
        """How long the events API and stream wait on a gap in ids before passing it."""
        return cast(float, setting("WEBHOOKS_API_SETTLE_SECONDS", 5.0))

    @property
    def STREAM_HEARTBEAT_SECONDS(self) -> float:
        """Quiet time after which the event stream sends a comment line to keep proxies open."""
        return cast(float, setting("WEBHOOKS_STREAM_HEARTBEAT_SECONDS", 15.0))

    @property
    def STREAM_POLL_SECONDS(self) -> float:
        """How often a stream reads the database when no live notification wakes it."""
        return cast(float, setting("WEBHOOKS_STREAM_POLL_SECONDS", 5.0))

    # Operating it: metrics, alerts, retention (README "Operating it").

    @property
    def METRICS(self) -> bool:
        """Record Prometheus metrics when prometheus_client is installed."""
        return bool(setting("WEBHOOKS_METRICS", True))

    @property
    def TRACING(self) -> bool:
        """Open OpenTelemetry spans when opentelemetry-api is installed."""
        return bool(setting("WEBHOOKS_TRACING", True))

    @property
    def METRICS_TOKEN(self) -> str:
        """Bearer token the scrape URL requires; empty: none."""
        return cast(str, setting("WEBHOOKS_METRICS_TOKEN", ""))

    @property
    def RETENTION_DAYS(self) -> float | None:
        """Age after which succeeded and skipped events are pruned; None keeps them."""
        return cast("float | None", setting("WEBHOOKS_RETENTION_DAYS", 30))

    @property
    def FAILED_RETENTION_DAYS(self) -> float | None:
        """Age after which failed events are pruned; None keeps them."""
        return cast("float | None", setting("WEBHOOKS_FAILED_RETENTION_DAYS", 90))

    @property
    def PRUNE_EVERY_SECONDS(self) -> float:
        """How often each worker (and the inline runner) prunes; 0: only the command does."""
        return cast(float, setting("WEBHOOKS_PRUNE_EVERY_SECONDS", 3600.0))

    @property
    def PRUNE_BATCH(self) -> int:
        """Rows deleted per transaction by a prune."""
        return cast(int, setting("WEBHOOKS_PRUNE_BATCH", 1000))

    @property
    def ALERT_NOTIFIER(self) -> str | None:
        """ "mail_admins", "webhook", a dotted path to a callable taking a Notice, or None."""
        return cast("str | None", setting("WEBHOOKS_ALERT_NOTIFIER", "mail_admins"))

    @property
    def ALERT_WEBHOOK_URL(self) -> str:
        """Where the "webhook" notifier POSTs its JSON notices."""
        return cast(str, setting("WEBHOOKS_ALERT_WEBHOOK_URL", ""))

    @property
    def ALERT_FAILURE_RATE(self) -> float:
        """Share of failing handler runs (0 to 1) that makes an endpoint unhealthy."""
        return cast(float, setting("WEBHOOKS_ALERT_FAILURE_RATE", 0.5))

    @property
    def ALERT_MIN_RUNS(self) -> int:
        """Fewest runs in the window before an endpoint is judged at all."""
        return cast(int, setting("WEBHOOKS_ALERT_MIN_RUNS", 10))

    @property
    def ALERT_WINDOW_SECONDS(self) -> float:
        """How far back the failure rate looks."""
        return cast(float, setting("WEBHOOKS_ALERT_WINDOW_SECONDS", 300.0))

    @property
    def ALERT_REPEAT_SECONDS(self) -> float:
        """Shortest time between two notices of one kind for one endpoint."""
        return cast(float, setting("WEBHOOKS_ALERT_REPEAT_SECONDS", 3600.0))

    @property
    def TALLY_SECONDS(self) -> float:
        """How often each process adds its counts for the live page's rates; 0: no thread."""
        return cast(float, setting("WEBHOOKS_TALLY_SECONDS", 5.0))


conf = Settings()
