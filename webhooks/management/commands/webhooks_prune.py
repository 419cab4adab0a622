from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from webhooks.api.batches import id_batches
from webhooks.models import Attempt, Event, Rejection

DURATION = re.compile(r"(?P<amount>\d+)(?P<unit>[dhms])")
UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
#: Finished work: what is pruned when no --status is given.
DEFAULT_STATUSES = (Event.Status.SUCCEEDED, Event.Status.SKIPPED)
#: Work still to do or under way; deleting it loses deliveries nobody handled.
LIVE_STATUSES = frozenset(
    {Event.Status.PENDING, Event.Status.PROCESSING, Event.Status.RETRYING}
)


class Command(BaseCommand):
    help = (
        "Delete events received longer ago than --older-than, with their attempts, "
        "and rejected deliveries as old. Only succeeded and skipped events unless "
        "--status says otherwise. Deletes in short batches, safe while traffic flows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="AGE",
            help="Such as 30d, 12h, 90m or 3600s.",
        )
        parser.add_argument(
            "--status",
            action="append",
            choices=Event.Status.values,
            help="Delete events with this status (repeatable; default: succeeded and skipped).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Allow pending, processing and retrying: work not done yet.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            metavar="N",
            help="Rows deleted per transaction (default 1000).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count, delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        cutoff = timezone.now() - parse_duration(options["older_than"])
        statuses = chosen_statuses(options["status"], force=options["force"])
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        events = Event.objects.filter(status__in=statuses, received_at__lt=cutoff)
        rejections = Rejection.objects.filter(at__lt=cutoff)
        which = f"{'/'.join(statuses)} event(s) received before {cutoff:%Y-%m-%d %H:%M:%S %Z}"
        if options["dry_run"]:
            attempts = Attempt.objects.filter(event__in=events).count()
            self.stdout.write(
                f"Would delete {events.count()} {which}, with {attempts} attempt(s), "
                f"and {rejections.count()} rejection(s). Nothing deleted (--dry-run)."
            )
            return
        size = options["batch_size"]
        deleted = delete_in_batches(events, size)
        self.stdout.write(
            f"Deleted {deleted.get(label(Event), 0)} {which}, "
            f"with {deleted.get(label(Attempt), 0)} attempt(s), "
            f"and {delete_in_batches(rejections, size).get(label(Rejection), 0)} rejection(s)."
        )


def parse_duration(value: str) -> timedelta:
    match = DURATION.fullmatch(value.strip())
    if match is None or int(match["amount"]) == 0:
        raise CommandError(
            f"--older-than takes a positive age such as 30d, 12h, 90m or 3600s, not {value!r}."
        )
    return timedelta(**{UNITS[match["unit"]]: int(match["amount"])})


def chosen_statuses(asked: list[str] | None, *, force: bool) -> list[str]:
    if not asked:
        return list(DEFAULT_STATUSES)
    live = sorted(LIVE_STATUSES.intersection(asked))
    if live and not force:
        raise CommandError(
            f"{', '.join(live)} events are work not done yet; add --force to delete them."
        )
    return list(dict.fromkeys(asked))


def delete_in_batches(rows: QuerySet[Any], size: int) -> dict[str, int]:
    """Delete ``rows`` one short transaction per batch; return counts by model label.

    The filter is applied again at delete time: a row that changed since its
    batch was read (an event replayed in between) is no longer selected and
    stays. ``only("pk")`` keeps Django's cascade from loading event bodies.
    """
    totals: dict[str, int] = {}
    for batch in id_batches(rows, size):
        with transaction.atomic():
            _, counts = rows.filter(pk__in=batch).only("pk").delete()
        for model, count in counts.items():
            totals[model] = totals.get(model, 0) + count
    return totals


def label(model: type[Model]) -> str:
    return model._meta.label
