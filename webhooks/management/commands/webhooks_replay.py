from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from webhooks.api.batches import id_batches
from webhooks.models import Endpoint, Event
from webhooks.processing import replay

#: Ids listed by name in the summary; past this, only a count.
IDS_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Process stored events again from their raw delivery (the provider is not asked): "
        "the events named by id, or every event with --status, optionally narrowed "
        "by --endpoint and --since. Attempt history is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", metavar="ID", help="Event ids.")
        parser.add_argument(
            "--status",
            choices=Event.Status.values,
            help="Replay every event with this status (instead of ids).",
        )
        parser.add_argument(
            "--endpoint", metavar="SLUG", help="With --status: only this endpoint."
        )
        parser.add_argument(
            "--since",
            metavar="ISO8601",
            help="With --status: only events received at or after this time (naive means UTC).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.queued = 0
        self.busy: list[int] = []
        if options["ids"] and options["status"]:
            raise CommandError("Give event ids or --status, not both.")
        if options["ids"]:
            if options["endpoint"] or options["since"]:
                raise CommandError("--endpoint and --since go with --status, not ids.")
            self.replay_ids(parse_ids(options["ids"]))
        elif options["status"]:
            self.replay_matching(selection(options))
        else:
            raise CommandError("Give event ids, or --status S to replay by status.")

    def replay_ids(self, ids: list[int]) -> None:
        missing = self.replay(ids)
        self.report()
        if missing:
            raise CommandError(f"No event with id {listing(missing)}.")

    def replay_matching(self, events: QuerySet[Event]) -> None:
        for batch in id_batches(events):
            # Missing ones were pruned since their batch was read: nothing to replay.
            self.replay(batch)
        self.report()

    def replay(self, ids: list[int]) -> list[int]:
        outcome = replay.replay_many(ids)
        self.queued += len(outcome.queued)
        self.busy.extend(outcome.busy)
        return outcome.missing

    def report(self) -> None:
        self.stdout.write(f"Queued {self.queued} event(s) for replay.")
        if self.busy:
            self.stdout.write(
                f"Skipped {len(self.busy)} event(s) being processed right now: "
                f"{listing(self.busy)}. Replay them once they finish."
            )


def parse_ids(values: list[str]) -> list[int]:
    ids: list[int] = []
    for value in values:
        if not (value.isascii() and value.isdigit()):
            raise CommandError(f"Event ids are whole numbers, not {value!r}.")
        ids.append(int(value))
    return list(dict.fromkeys(ids))


def selection(options: dict[str, Any]) -> QuerySet[Event]:
    events = Event.objects.filter(status=options["status"])
    if options["endpoint"]:
        endpoint = Endpoint.objects.filter(slug=options["endpoint"]).first()
        if endpoint is None:
            raise CommandError(f"No endpoint {options['endpoint']!r}.")
        events = events.filter(endpoint=endpoint)
    if options["since"]:
        events = events.filter(received_at__gte=parse_time(options["since"]))
    return events


def parse_time(value: str) -> datetime:
    """An ISO 8601 date or date and time; one without a UTC offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--since takes an ISO 8601 time such as 2024-05-01T12:00:00Z, not {value!r}."
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def listing(ids: list[int]) -> str:
    shown = ", ".join(str(event_id) for event_id in ids[:IDS_SHOWN])
    more = len(ids) - IDS_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown
