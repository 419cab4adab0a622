"""OpenTelemetry spans, recorded by the SDK's in-memory exporter."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from tests.factories import make_endpoint
from tests.webhooks.ingest.test_views import SECRET, github_headers
from webhooks.models import Event
from webhooks.observability import tracing
from webhooks.processing import batches, claims, handlers

pytestmark = pytest.mark.django_db


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # A provider of the test's own: the global one can be set once per process,
    # and would go on tracing every later test's deliveries.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.use_provider(None)
    provider.shutdown()


def deliver(client, body: bytes = b'{"a": 1}', secret: str = SECRET):
    return client.post(
        "/webhooks/gh/",
        body,
        content_type="application/json",
        headers=github_headers(body, secret),
    )


def by_name(exporter: InMemorySpanExporter) -> dict[str, list]:
    found: dict[str, list] = {}
    for span in exporter.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


def test_ingest_opens_verify_and_store_inside_its_span_and_stores_its_context(
    client, spans
) -> None:
    make_endpoint("gh", "github", SECRET)
    response = deliver(client)
    assert response.status_code == 200
    found = by_name(spans)
    (ingest,) = found["webhooks.ingest"]
    (verify,) = found["webhooks.verify"]
    (store,) = found["webhooks.store"]
    assert ingest.kind == SpanKind.SERVER
    assert ingest.attributes["webhooks.endpoint"] == "gh"
    assert ingest.attributes["http.response.status_code"] == 200
    for child in (verify, store):
        assert child.parent.span_id == ingest.context.span_id
        assert child.context.trace_id == ingest.context.trace_id
    event = Event.objects.get()
    version, trace_id, span_id, flags = event.trace_parent.split("-")
    assert version == "00"
    assert int(flags, 16) & 1  # sampled
    assert int(trace_id, 16) == ingest.context.trace_id
    assert int(span_id, 16) == ingest.context.span_id


def test_a_forged_delivery_has_a_failed_verify_span_and_no_store(client, spans) -> None:
    make_endpoint("gh", "github", SECRET)
    assert deliver(client, secret="forged").status_code == 401
    found = by_name(spans)
    (verify,) = found["webhooks.verify"]
    assert verify.status.status_code == StatusCode.ERROR
    assert "webhooks.store" not in found
    assert found["webhooks.ingest"][0].attributes["http.response.status_code"] == 401


def test_processing_links_to_the_stored_ingest_context_with_a_span_per_handler(
    client, spans
) -> None:
    make_endpoint("gh", "github", SECRET)

    def first(event: Event) -> None:
        pass

    def second(event: Event) -> None:
        raise ValueError("out of stock")

    handlers.handler("github", "push")(first)
    handlers.handler("github", "push")(second)
    try:
        assert deliver(client).status_code == 200
        (ingest,) = by_name(spans)["webhooks.ingest"]
        spans.clear()
        # Processing runs later, with no ingest span around: what joins them is
        # the traceparent stored on the row.
        assert trace.get_current_span().get_span_context().is_valid is False
        batches.run_batch(claims.claim_events(10, "trace-test"))
    finally:
        handlers.unregister(first)
        handlers.unregister(second)
    found = by_name(spans)
    (process,) = found["webhooks.process"]
    assert process.kind == SpanKind.CONSUMER
    assert [link.context.span_id for link in process.links] == [ingest.context.span_id]
    assert process.links[0].context.trace_id == ingest.context.trace_id
    assert process.attributes["webhooks.event_id"] == Event.objects.get().pk
    assert process.attributes["webhooks.status"] == "retrying"
    assert process.status.status_code == StatusCode.ERROR
    handler_spans = found["webhooks.handler"]
    assert [
        span.attributes["webhooks.handler"].rsplit(".", 1)[-1] for span in handler_spans
    ] == [
        "first",
        "second",
    ]
    assert all(span.parent.span_id == process.context.span_id for span in handler_spans)
    assert handler_spans[1].status.status_code == StatusCode.ERROR


@override_settings(WEBHOOKS_TRACING=False)
def test_tracing_off_opens_no_span_and_stores_no_context(client, spans) -> None:
    make_endpoint("gh", "github", SECRET)
    assert deliver(client).status_code == 200
    assert spans.get_finished_spans() == ()
    assert Event.objects.get().trace_parent == ""


ABSENT = """
import sys
sys.modules["opentelemetry"] = None  # as if the [otel] extra were not installed
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, run_syncdb=True)
from django.test import Client
from tests.factories import make_endpoint
from tests.webhooks.ingest.test_views import SECRET, github_headers
from webhooks.models import Event
from webhooks.observability import tracing
from webhooks.processing import batches, claims
make_endpoint("gh", "github", SECRET)
body = b'{"a": 1}'
answer = Client().post("/webhooks/gh/", body, content_type="application/json",
                       headers=github_headers(body))
assert answer.status_code == 200, answer.content
assert not tracing.enabled()
assert Event.objects.get().trace_parent == ""
batches.run_batch(claims.claim_events(10, "w"))
assert Event.objects.get().attempts == 1  # it ran (the demo's handler is installed)
assert not any(name.startswith("opentelemetry") and sys.modules[name] is not None
               for name in sys.modules)
print("ok")
"""


def test_without_the_extra_nothing_is_traced_and_everything_works() -> None:
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", ABSENT],
        cwd=root,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
