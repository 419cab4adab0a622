"""Retention by default: finished events do not pile up for ever.

Succeeded and skipped events go after ``WEBHOOKS_RETENTION_DAYS`` (30), failed
ones after ``WEBHOOKS_FAILED_RETENTION_DAYS`` (90), each with its attempts, and
rejected deliveries after the first of the two (they are also bounded per
endpoint as they arrive). Pending, processing and retrying events are work not
done and are never pruned by age.

Every ``webhooks_worker`` (and the inline runner) prunes on a schedule,
``WEBHOOKS_PRUNE_EVERY_SECONDS``; ``manage.py webhooks_prune`` does the same for
cron users. Rows go in batches of ``WEBHOOKS_PRUNE_BATCH``, each chosen by id
and deleted in its own short transaction, so ingest, which only inserts new
rows, never waits on a prune for long.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Attempt, Event, Rejection, Tally

logger = logging.getLogger("webhooks")

FINISHED = (Event.Status.SUCCEEDED, Event.Status.SKIPPED)
TALLIES_KEPT = timedelta(days=2)
#: A fixed key for PostgreSQL's advisory lock: one scheduled prune at a time.
LOCK_KEY = 0x77656268  # "webh"


@dataclass
class Pruned:
    events: int = 0
    attempts: int = 0
    rejections: int = 0
    batches: int = 0

    def add(self, other: Pruned) -> None:
        self.events += other.events
        self.attempts += other.attempts
        self.rejections += other.rejections
        self.batches += other.batches


def policy(now: datetime | None = None) -> list[tuple[tuple[str, ...], datetime]]:
    """The statuses the settings prune, each with its cutoff (a setting of None keeps them)."""
    now = now or timezone.now()
    rules: list[tuple[tuple[str, ...], datetime]] = []
    if conf.RETENTION_DAYS is not None:
        rules.append((FINISHED, now - timedelta(days=conf.RETENTION_DAYS)))
    if conf.FAILED_RETENTION_DAYS is not None:
        rules.append(
            ((Event.Status.FAILED,), now - timedelta(days=conf.FAILED_RETENTION_DAYS))
        )
    return rules


def prune(now: datetime | None = None, batch_size: int | None = None) -> Pruned:
    """Prune what the retention settings say; return what went."""
    total = Pruned()
    rules = policy(now)
    for statuses, cutoff in rules:
        total.add(prune_events(statuses, cutoff, batch_size))
    if rules:
        # Rejections go with the shorter of the two ages.
        shorter = max(cutoff for _, cutoff in rules)
        total.add(prune_rejections(shorter, batch_size))
    # The live page's per-minute counts: it shows a day at most.
    Tally.objects.filter(minute__lt=(now or timezone.now()) - TALLIES_KEPT).delete()
    return total


def prune_events(
    statuses: Iterable[str], cutoff: datetime, batch_size: int | None = None
) -> Pruned:
    """Delete events of ``statuses`` received before ``cutoff``, with their attempts."""
    rows = Event.objects.filter(status__in=list(statuses), received_at__lt=cutoff)
    return delete_in_batches(rows, batch_size or conf.PRUNE_BATCH)


def prune_rejections(cutoff: datetime, batch_size: int | None = None) -> Pruned:
    return delete_in_batches(
        Rejection.objects.filter(at__lt=cutoff), batch_size or conf.PRUNE_BATCH
    )


def delete_in_batches(rows: QuerySet[Any], size: int) -> Pruned:
    """Delete ``rows`` a batch of ids at a time, each batch in its own transaction.

    Batches walk up the ids (keyset, never an offset), and the filter is
    applied again at delete time: a row that changed since its batch was read
    (an event replayed in between) is no longer selected and stays. Only the
    primary key is loaded, so bodies never leave the database.
    """
    pruned = Pruned()
    ids = rows.order_by("pk").values_list("pk", flat=True)
    last = 0
    while True:
        batch = list(ids.filter(pk__gt=last)[:size])
        if not batch:
            return pruned
        last = batch[-1]
        with transaction.atomic():
            if rows.model is Event and only_attempts_refer_to_events():
                counts = delete_events(rows, batch)
            else:
                _, counts = rows.filter(pk__in=batch).only("pk").delete()
        pruned.batches += 1
        pruned.events += counts.get(label(Event), 0)
        pruned.attempts += counts.get(label(Attempt), 0)
        pruned.rejections += counts.get(label(Rejection), 0)


def only_attempts_refer_to_events() -> bool:
    """Whether the app's own attempts are all that points at events.

    Then a batch is three plain statements. A project whose own models refer
    to events gets Django's delete, which honours their ``on_delete``, at the
    cost of its smaller statements (it deletes 100 rows per DELETE).
    """
    return [rel.related_model for rel in Event._meta.related_objects] == [Attempt]


def delete_events(rows: QuerySet[Any], batch: list[int]) -> dict[str, int]:
    """In the caller's transaction: lock the batch's rows that still match, delete them
    and their attempts; three statements, whatever the batch size."""
    still = list(
        rows.filter(pk__in=batch).select_for_update().values_list("pk", flat=True)
    )
    if not still:
        return {}
    attempts = Attempt.objects.filter(event_id__in=still)._raw_delete(
        Attempt.objects.db
    )
    events = Event.objects.filter(pk__in=still)._raw_delete(Event.objects.db)
    return {label(Event): events, label(Attempt): attempts}


def label(model: type[Model]) -> str:
    return model._meta.label


class Schedule:
    """Prunes every ``WEBHOOKS_PRUNE_EVERY_SECONDS`` in a thread of a processing process.

    On PostgreSQL an advisory lock lets one process at a time prune; the
    others skip that round.
    """

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping
        self.rounds = 0

    def start(self) -> threading.Thread | None:
        if not conf.PRUNE_EVERY_SECONDS:
            return None
        thread = threading.Thread(target=self.serve, name="webhooks-prune", daemon=True)
        thread.start()
        return thread

    def serve(self) -> None:
        # The first round soon after start: a worker restarted often still prunes.
        delay = min(conf.PRUNE_EVERY_SECONDS, 60.0)
        while not self.stopping.wait(delay):
            try:
                self.run_once()
            finally:
                # The thread's connection, released between rounds as after a request.
                close_old_connections()
            delay = conf.PRUNE_EVERY_SECONDS

    def run_once(self) -> Pruned | None:
        """One round; None when another process holds the lock or the database failed."""
        try:
            with prune_lock() as held:
                if not held:
                    return None
                pruned = prune()
        except DatabaseError:
            logger.warning("Scheduled prune failed; trying next round", exc_info=True)
            return None
        self.rounds += 1
        if pruned.events or pruned.rejections:
            logger.info(
                "Pruned %d event(s), %d attempt(s) and %d rejection(s) past retention",
                pruned.events,
                pruned.attempts,
                pruned.rejections,
            )
        return pruned


class prune_lock:
    """PostgreSQL's session advisory lock, taken without waiting; elsewhere always held."""

    def __enter__(self) -> bool:
        self.locked = False
        if connection.vendor != "postgresql":
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            self.locked = bool(cursor.fetchone()[0])
        return self.locked

    def __exit__(self, *exc: object) -> None:
        if self.locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
