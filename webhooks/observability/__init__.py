"""What an operator watches: Prometheus metrics, OpenTelemetry spans, health.

Each part is optional. Without ``prometheus_client`` (the ``[metrics]`` extra)
or ``opentelemetry-api`` (the ``[otel]`` extra) nothing is registered and the
calls the rest of the app makes return at once.
"""
