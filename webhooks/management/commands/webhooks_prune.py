from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from webhooks.conf import conf
from webhooks.models import Attempt, Event, Rejection
from webhooks.processing import retention

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
        "--status says otherwise. Without --older-than, apply the retention settings "
        "(WEBHOOKS_RETENTION_DAYS, WEBHOOKS_FAILED_RETENTION_DAYS), as workers do on "
        "their schedule. Deletes in short batches, safe while traffic flows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            metavar="AGE",
            help="Such as 30d, 12h, 90m or 3600s (default: the retention settings).",
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
            default=None,
            metavar="N",
            help="Rows deleted per transaction (default WEBHOOKS_PRUNE_BATCH, 1000).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count, delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        size = options["batch_size"]
        if size is not None and size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if options["older_than"] is None:
            if options["status"]:
                raise CommandError("--status needs --older-than.")
            self.by_settings(dry_run=options["dry_run"], size=size)
            return
        cutoff = timezone.now() - parse_duration(options["older_than"])
        statuses = chosen_statuses(options["status"], force=options["force"])
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
        size = size or conf.PRUNE_BATCH
        deleted = retention.delete_in_batches(events, size)
        rejected = retention.delete_in_batches(rejections, size)
        self.stdout.write(
            f"Deleted {deleted.events} {which}, with {deleted.attempts} attempt(s), "
            f"and {rejected.rejections} rejection(s)."
        )

    def by_settings(self, *, dry_run: bool, size: int | None) -> None:
        rules = retention.policy()
        if not rules:
            self.stdout.write(
                "Nothing to prune: WEBHOOKS_RETENTION_DAYS and "
                "WEBHOOKS_FAILED_RETENTION_DAYS are both None."
            )
            return
        for statuses, cutoff in rules:
            which = f"{'/'.join(statuses)} event(s) received before {cutoff:%Y-%m-%d %H:%M:%S %Z}"
            if dry_run:
                count = Event.objects.filter(
                    status__in=statuses, received_at__lt=cutoff
                ).count()
                self.stdout.write(f"Would delete {count} {which}.")
            else:
                pruned = retention.prune_events(statuses, cutoff, size)
                self.stdout.write(
                    f"Deleted {pruned.events} {which}, with {pruned.attempts} attempt(s)."
                )
        cutoff = max(cutoff for _, cutoff in rules)
        if dry_run:
            count = Rejection.objects.filter(at__lt=cutoff).count()
            self.stdout.write(
                f"Would delete {count} rejection(s). Nothing deleted (--dry-run)."
            )
        else:
            pruned = retention.prune_rejections(cutoff, size)
            self.stdout.write(f"Deleted {pruned.rejections} rejection(s).")


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
