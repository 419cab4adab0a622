"""OpenTelemetry spans of a delivery's way in and of each run of its handlers.

With ``opentelemetry-api`` installed (the ``[otel]`` extra) and
``WEBHOOKS_TRACING`` left on, ingest opens ``webhooks.ingest`` (attributes: the
endpoint and provider once known) with ``webhooks.verify`` and
``webhooks.store`` inside it, and stores the ingest span's W3C ``traceparent``
on the event. Processing, maybe hours later and in another process, opens
``webhooks.process`` for each run of an event's handlers, linked to that stored
context, with one ``webhooks.handler`` span per handler inside. Exporting is
the host project's business (the OpenTelemetry SDK and an exporter, set up as
usual); without an SDK's provider set, or without the extra, every call here
returns at once.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from webhooks.conf import conf

try:
    from opentelemetry import trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator,
    )
except ImportError:  # the [otel] extra is not installed
    AVAILABLE = False
else:
    AVAILABLE = True
    _propagator = TraceContextTextMapPropagator()

TRACER_NAME = "webhooks"

#: A provider used instead of OpenTelemetry's global one (see :func:`use_provider`).
_provider: Any = None


def use_provider(provider: Any) -> None:
    """Open the app's spans with ``provider`` rather than the global one; None: the global.

    The global provider can be set once per process; tests (and projects that
    keep the app's spans apart) pass their own here.
    """
    global _provider
    _provider = provider


def enabled() -> bool:
    # Until the project sets a provider (the SDK) the API's spans record
    # nothing and carry no context, yet each costs as much as verifying a
    # signature: skipped, which changes nothing anyone can see.
    return (
        AVAILABLE
        and conf.TRACING
        and (
            _provider is not None
            or not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        )
    )


def _tracer() -> Any:
    if _provider is not None:
        return _provider.get_tracer(TRACER_NAME)
    return _global_tracer()


@functools.cache
def _global_tracer() -> Any:
    # Kept: finding the provider reads the environment on every call, a cost
    # per delivery. The API's tracer follows a provider the project sets later.
    return trace.get_tracer(TRACER_NAME)


@contextlib.contextmanager
def span(name: str, kind: str = "internal", **attributes: Any) -> Iterator[Any]:
    """A span named ``name`` around the block (None when tracing is off)."""
    if not enabled():
        yield None
        return
    tracer = _tracer()
    with tracer.start_as_current_span(
        name,
        kind=SpanKind.SERVER if kind == "server" else SpanKind.INTERNAL,
        attributes=_clean(attributes),
    ) as current:
        yield current


def annotate(current: Any, **attributes: Any) -> None:
    """Add attributes to a span from :func:`span` (None: tracing is off)."""
    if current is not None:
        current.set_attributes(_clean(attributes))


def failed(current: Any, description: str) -> None:
    if current is not None:
        current.set_status(Status(StatusCode.ERROR, description[:200]))


def current_parent() -> str:
    """The current span's W3C ``traceparent``, to store with an event; "" without one."""
    if not enabled():
        return ""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")[:100]


@contextlib.contextmanager
def processing(event: Any) -> Iterator[Any]:
    """``webhooks.process`` for one run of ``event``'s handlers, linked to its ingest span."""
    if not enabled():
        yield None
        return
    links = []
    if event.trace_parent:
        stored = trace.get_current_span(
            _propagator.extract({"traceparent": event.trace_parent})
        ).get_span_context()
        if stored.is_valid:
            links.append(Link(stored))
    tracer = _tracer()
    with tracer.start_as_current_span(
        "webhooks.process",
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=_clean(
            {
                "webhooks.event_id": event.pk,
                "webhooks.endpoint": event.endpoint.slug,
                "webhooks.provider": event.provider,
                "webhooks.event_type": event.event_type,
                "webhooks.attempt": event.attempts,
            }
        ),
    ) as current:
        yield current


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        # Plain names are ours; dotted ones (semantic conventions) stay as given.
        (key if "." in key else f"webhooks.{key}"): value
        for key, value in attributes.items()
        if value is not None
    }
