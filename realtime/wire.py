"""The wire format of the live dashboard: every message is shaped here, and only here.

Everything returned is JSON- and msgpack-safe primitives (str, int, None, lists
and dicts of them): no datetimes, no model instances, so what passes the
in-memory layer in tests also passes Redis in production.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# The summary lives with the events API, which shares it; re-exported for the dashboard.
from webhooks.api.summaries import (
    LAST_ERROR_CHARS,
    SUMMARY_FIELDS,
    event_summary,
    iso,
    summaries,
)
from webhooks.models import Endpoint

__all__ = [
    "LAST_ERROR_CHARS",
    "SUMMARY_FIELDS",
    "event_summary",
    "iso",
    "message",
    "rejection_summary",
    "summaries",
]


def rejection_summary(
    endpoint: Endpoint, reason: str, source_ip: str | None, at: datetime
) -> dict[str, Any]:
    return {
        "endpoint": endpoint.slug,
        "reason": reason,
        "source_ip": source_ip,
        "at": iso(at),
    }


def message(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}
