"""The worker settings with an OpenTelemetry SDK that writes every span, one JSON per line,
to the file named by WEBHOOKS_TEST_SPANS: a server and a worker process append to it."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from tests.settings_workers import *  # noqa: F403

# Line-buffered: a server killed at the end of the test has written what it ended.
_spans = open(os.environ["WEBHOOKS_TEST_SPANS"], "a", buffering=1)  # noqa: SIM115
_provider = TracerProvider()
_provider.add_span_processor(
    SimpleSpanProcessor(
        ConsoleSpanExporter(
            out=_spans, formatter=lambda span: span.to_json(indent=None) + "\n"
        )
    )
)
trace.set_tracer_provider(_provider)
