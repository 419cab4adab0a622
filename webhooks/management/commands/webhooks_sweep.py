from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks.conf import conf
from webhooks.processing.dispatch import new_work
from webhooks.processing.sweep import sweep


class Command(BaseCommand):
    help = (
        "tasks and celery modes: enqueue again the events still due "
        "WEBHOOKS_SWEEP_AFTER_SECONDS after their time (a lost message, a retry come "
        "due, a killed task worker). Run it from cron, or with --every as a process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="Sweep again every SECONDS until stopped (SIGTERM, SIGINT).",
        )
        parser.add_argument(
            "--after",
            type=float,
            metavar="SECONDS",
            help="Overdue after this long (default WEBHOOKS_SWEEP_AFTER_SECONDS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every, after = options["every"], options["after"]
        if every is not None and every <= 0:
            raise CommandError("--every must be more than 0.")
        if after is not None and after < 0:
            raise CommandError("--after cannot be negative.")
        if every is None:
            self.stdout.write(
                f"Enqueued {sweep(new_work, after)} overdue event(s) again."
            )
            return
        stopping = threading.Event()

        def stop(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Sweeping every {every:g} s ({conf.PROCESSING} mode)")
        while not stopping.is_set():
            if count := sweep(new_work, after):
                self.stdout.write(f"Enqueued {count} overdue event(s) again.")
            stopping.wait(every)
