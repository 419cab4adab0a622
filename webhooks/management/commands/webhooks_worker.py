from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection

from webhooks.conf import conf
from webhooks.processing import retention
from webhooks.processing.dispatch import CHANNEL, TASK_MODES, new_work
from webhooks.processing.runner import Runner, worker_name
from webhooks.processing.sweep import sweep

logger = logging.getLogger("webhooks")

#: How long start-up waits for the LISTEN connection before going on without it.
LISTEN_READY_SECONDS = 10.0


class Command(BaseCommand):
    help = (
        "Process stored events with the registered handlers. Run as many as you like "
        "on PostgreSQL; on SQLite run one. SIGTERM finishes the running handlers, then exits. "
        "In the tasks and celery modes handlers run in the task workers, and this "
        "process sweeps for them instead (see webhooks_sweep)."
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
        if conf.PROCESSING in TASK_MODES:
            self.sweep(once=options["once"])
            return
        runner = Runner(options["concurrency"], worker_name("worker"))
        if not options["once"]:
            stop_on_signals(runner.stop, f"Worker {runner.name}")
            retention.Schedule(runner.stopping).start()
            if connection.vendor == "postgresql":
                listening = threading.Event()
                threading.Thread(
                    target=listen, args=(runner, listening), daemon=True
                ).start()
                # The line below then also says that wake-ups reach this worker.
                listening.wait(LISTEN_READY_SECONDS)
        self.stdout.write(
            f"{runner.name}: processing with {runner.concurrency} thread(s)"
        )
        runner.serve(once=options["once"])
        self.stdout.write(f"{runner.name}: stopped after {runner.processed} event(s)")

    def sweep(self, *, once: bool) -> None:
        name = worker_name("sweeper")
        stopping = threading.Event()
        if not once:
            stop_on_signals(stopping.set, f"Sweeper {name}")
            retention.Schedule(stopping).start()
        self.stdout.write(
            f"{name}: {conf.PROCESSING} mode, handlers run in the task workers; "
            f"sweeping every {conf.POLL_SECONDS:g} s"
        )
        while True:
            try:
                if count := sweep(new_work):
                    self.stdout.write(f"{name}: enqueued {count} overdue event(s)")
            except DatabaseError:
                logger.warning("Sweep failed; trying again", exc_info=True)
            if once or stopping.wait(conf.POLL_SECONDS):
                break
        self.stdout.write(f"{name}: stopped")


def stop_on_signals(stop: Callable[[], None], who: str) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        logger.info("%s stopping: finishing what runs", who)
        stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def listen(runner: Runner, listening: threading.Event | None = None) -> None:
    """Wake the runner on every NOTIFY from ingest; reconnect when the database goes away.

    ``listening`` is set once the first LISTEN is in place.
    """
    import psycopg

    while not runner.stopping.is_set():
        try:
            params = connection.get_connection_params()
            params.pop("pool", None)
            with psycopg.connect(**params, autocommit=True) as listener:
                listener.execute(f"LISTEN {CHANNEL}")
                if listening is not None:
                    listening.set()
                # Whatever was committed before the LISTEN is found by the claim
                # that follows this wake-up.
                runner.wake()
                while not runner.stopping.is_set():
                    for _ in listener.notifies(timeout=1.0, stop_after=1):
                        runner.wake()
        except psycopg.Error:
            logger.info(
                "Worker lost its LISTEN connection; polling until it is back",
                exc_info=True,
            )
            runner.stopping.wait(2.0)
