"""Per-endpoint, per-minute counts of what happened: the live page's rates and chart.

Every process counts in memory (a dict increment, no query on the request
path) and a background thread adds its counts to the ``Tally`` table every
``WEBHOOKS_TALLY_SECONDS`` in one statement (``INSERT ... ON CONFLICT DO UPDATE
SET n = n + excluded.n``), so the figures hold across server and worker
processes. With the setting at 0 no thread runs and :func:`flush` is called by
whoever wants the figures written (tests, a management command).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, close_old_connections, connections, router

from webhooks.conf import conf
from webhooks.models import Tally

logger = logging.getLogger("webhooks")

KINDS = ("received", "failed", "rejected", "ignored")
#: Counts kept when the database refuses them, at most; older minutes go first.
MAX_PENDING = 100_000

_counts: Counter[tuple[int, int, str]] = Counter()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def count(
    endpoint_id: int, kind: str, at: float | None = None, amount: int = 1
) -> None:
    """Add ``amount`` to this minute's ``kind`` for the endpoint (``at``: Unix time)."""
    minute = int((time.time() if at is None else at) // 60)
    with _lock:
        _counts[(endpoint_id, minute, kind)] += amount
    _start()


def _start() -> None:
    global _thread
    if _thread is not None or not conf.TALLY_SECONDS:
        return
    with _lock:
        if _thread is None:
            _thread = threading.Thread(
                target=_serve, name="webhooks-tallies", daemon=True
            )
            _thread.start()
            atexit.register(flush)


def _serve() -> None:
    while True:
        time.sleep(conf.TALLY_SECONDS or 5.0)
        try:
            flush()
        finally:
            close_old_connections()


def take() -> dict[tuple[int, int], dict[str, int]]:
    """Everything counted since the last flush, by (endpoint, minute); the counts are reset."""
    global _counts
    with _lock:
        taken, _counts = _counts, Counter()
    rows: dict[tuple[int, int], dict[str, int]] = {}
    for (endpoint_id, minute, kind), amount in taken.items():
        rows.setdefault((endpoint_id, minute), dict.fromkeys(KINDS, 0))[kind] += amount
    return rows


def flush() -> int:
    """Add the counts to the database; return the rows written. Kept for later if it fails."""
    rows = take()
    if not rows:
        return 0
    connection = connections[router.db_for_write(Tally)]
    table = Tally._meta.db_table
    columns = ", ".join(KINDS)
    added = ", ".join(f"{kind} = {table}.{kind} + excluded.{kind}" for kind in KINDS)
    sql = (
        f"INSERT INTO {table} (endpoint_id, minute, {columns}) "
        f"VALUES (%s, %s, {', '.join(['%s'] * len(KINDS))}) "
        f"ON CONFLICT (endpoint_id, minute) DO UPDATE SET {added}"
    )
    params = [
        [
            endpoint_id,
            connection.ops.adapt_datetimefield_value(
                datetime.fromtimestamp(minute * 60, tz=UTC)
            ),
            *(figures[kind] for kind in KINDS),
        ]
        for (endpoint_id, minute), figures in rows.items()
    ]
    try:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
    except DatabaseError:
        # An endpoint deleted meanwhile fails the whole statement: keep the rest.
        logger.warning("Tallies not written; kept for the next flush", exc_info=True)
        _keep(rows)
        return 0
    return len(rows)


def _keep(rows: dict[tuple[int, int], dict[str, int]]) -> None:
    from webhooks.models import Endpoint

    try:
        existing = set(Endpoint.objects.values_list("pk", flat=True))
    except DatabaseError:
        existing = None
    with _lock:
        for (endpoint_id, minute), figures in rows.items():
            if existing is not None and endpoint_id not in existing:
                continue
            for kind, amount in figures.items():
                if amount:
                    _counts[(endpoint_id, minute, kind)] += amount
        while len(_counts) > MAX_PENDING:
            del _counts[min(_counts, key=lambda key: key[1])]


def forget() -> None:
    with _lock:
        _counts.clear()


def minute_start(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def since(seconds: float, now: datetime | None = None) -> datetime:
    now = now or datetime.now(tz=UTC)
    return minute_start(now - timedelta(seconds=seconds))


# Receivers of the app's signals; connected by the app.


def on_received(sender: type, event: Any, **kwargs: Any) -> None:
    count(event.endpoint_id, "received")


def on_rejected(sender: type, endpoint: Any, **kwargs: Any) -> None:
    count(endpoint.pk, "rejected")


def on_status(sender: type, event: Any, previous: str, **kwargs: Any) -> None:
    if previous == "processing" and event.status in ("retrying", "failed"):
        count(event.endpoint_id, "failed")


def connect() -> None:
    from webhooks import signals

    uid = "webhooks.observability.tallies"
    signals.event_received.connect(on_received, dispatch_uid=f"{uid}.received")
    signals.delivery_rejected.connect(on_rejected, dispatch_uid=f"{uid}.rejected")
    signals.event_status_changed.connect(on_status, dispatch_uid=f"{uid}.status")
