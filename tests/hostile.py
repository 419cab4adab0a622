"""What every answer to a hostile request must look like, and a watch on error logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from hypothesis import settings

#: Loggers whose ERROR records mean an unhandled failure somewhere on the request path.
WATCHED_LOGGERS = ("django", "webhooks", "realtime", "asyncio")


def examples(count: int) -> settings:
    """``count`` examples under the CI profile, scaled by the profile loaded (explore: 10x)."""
    return settings(max_examples=count * settings.default.max_examples // 100)


SIGNATURE_REASONS = {
    "missing_signature",
    "malformed_signature",
    "signature_mismatch",
    "timestamp_out_of_tolerance",
}


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def error_log() -> Iterator[list[logging.LogRecord]]:
    """The ERROR records logged to the watched loggers while the block runs."""
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in WATCHED_LOGGERS]
    for logger in loggers:
        logger.addHandler(collector)
    try:
        yield collector.records
    finally:
        for logger in loggers:
            logger.removeHandler(collector)


def describe(records: list[logging.LogRecord]) -> list[str]:
    return [f"{record.name}: {record.getMessage()}" for record in records]


def assert_contract_answer(
    status: int, headers: Mapping[str, str], body: bytes, *, method: str = "POST"
) -> None:
    """Fail unless (status, headers, body) is one of CONTRACT.md section 5's answers.

    ``headers`` has lower-case names. A 503 is not allowed here: these tests run
    with a healthy database, so one would mean an unexpected failure.
    """
    assert status != 500, body
    if method == "HEAD" and not body:
        # Django drops the body of a HEAD answer; the status still has to fit.
        assert status in (405, 404, 413), status
        return
    content_type = headers.get("content-type", "")
    assert content_type.startswith("application/json"), (status, content_type, body)
    data: Any = json.loads(body)
    assert isinstance(data, dict), data
    if status == 200:
        assert (
            set(data) == {"status", "id"}
            and data["status"] in ("received", "duplicate")
            and isinstance(data["id"], int)
        ) or set(data) == {"challenge"}, data
    elif status == 401:
        assert data == {"error": "invalid_signature", "reason": data.get("reason")}
        assert data["reason"] in SIGNATURE_REASONS, data
    elif status == 403:
        assert data == {"error": "forbidden", "reason": "ip_not_allowed"}, data
    elif status == 404:
        assert data == {"error": "unknown_endpoint"}, data
    elif status == 405:
        assert data == {"error": "method_not_allowed"}, data
        assert "POST" in headers.get("allow", ""), headers
    elif status == 413:
        assert data.get("error") == "body_too_large" and set(data) == {
            "error",
            "limit",
        }, data
    elif status == 429:
        assert data == {"error": "rate_limited"}, data
        assert headers.get("retry-after", "").isdigit(), headers
    else:
        raise AssertionError(f"answer outside the contract: {status} {body!r}")
