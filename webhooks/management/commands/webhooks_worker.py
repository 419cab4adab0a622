from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from webhooks import retention
from webhooks.processing.dispatch import CHANNEL
from webhooks.processing.runner import Runner, worker_name

logger = logging.getLogger("webhooks")


class Command(BaseCommand):
    help = (
        "Process stored events with the registered handlers. Run as many as you like "
        "on PostgreSQL; on SQLite run one. SIGTERM finishes the running handlers, then exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency", type=int, default=4, help="Handler threads (default 4)."
        )
        parser.add_argument(
            "--once", action="store_true", help="Process what is due now, then exit."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1.")
        runner = Runner(options["concurrency"], worker_name("worker"))
        if not options["once"]:
            self._stop_on_signals(runner)
            retention.Schedule(runner.stopping).start()
            if connection.vendor == "postgresql":
                threading.Thread(target=listen, args=(runner,), daemon=True).start()
        self.stdout.write(
            f"{runner.name}: processing with {runner.concurrency} thread(s)"
        )
        runner.serve(once=options["once"])
        self.stdout.write(f"{runner.name}: stopped after {runner.processed} event(s)")

    def _stop_on_signals(self, runner: Runner) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            logger.info("Worker %s stopping: finishing running handlers", runner.name)
            runner.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


def listen(runner: Runner) -> None:
    """Wake the runner on every NOTIFY from ingest; reconnect when the database goes away."""
    import psycopg

    while not runner.stopping.is_set():
        try:
            params = connection.get_connection_params()
            params.pop("pool", None)
            with psycopg.connect(**params, autocommit=True) as listener:
                listener.execute(f"LISTEN {CHANNEL}")
                while not runner.stopping.is_set():
                    for _ in listener.notifies(timeout=1.0, stop_after=1):
                        runner.wake()
        except psycopg.Error:
            logger.info(
                "Worker lost its LISTEN connection; polling until it is back",
                exc_info=True,
            )
            runner.stopping.wait(2.0)
