"""The loop both processing modes share: claim what is due, run it on a thread pool,
renew the leases of what runs, and sleep until woken or the poll interval passes."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from django.db import DatabaseError, close_old_connections, connections

from webhooks.conf import conf
from webhooks.models import Event
from webhooks.processing import queue as processing

logger = logging.getLogger("webhooks")


def worker_name(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:100]


class Runner:
    def __init__(self, concurrency: int, name: str) -> None:
        self.concurrency = concurrency
        self.name = name
        #: Fewest free threads worth a claim while others run: a claim is a
        #: transaction, so finished events are refilled in batches, not one by one.
        self.batch = max(1, concurrency // 2)
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="webhooks")
        self.running: set[int] = set()
        self.lock = threading.Lock()
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.processed = 0

    def wake(self) -> None:
        self.wakeup.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()

    def serve(self, *, once: bool = False) -> None:
        """Loop until stopped (or, with ``once``, until nothing is due or running)."""
        renewed = time.monotonic()
        try:
            while not self.stopping.is_set():
                started = self._claim_and_start()
                if time.monotonic() - renewed > conf.LEASE_SECONDS / 3:
                    self._renew()
                    renewed = time.monotonic()
                if once and not started and not self.running:
                    break
                if not started or len(self.running) >= self.concurrency:
                    self.wakeup.wait(conf.POLL_SECONDS if not once else 0.05)
                    self.wakeup.clear()
        finally:
            # Finish what runs: a stop never abandons a handler half way.
            self.pool.shutdown(wait=True)
            close_old_connections()

    def wanted(self) -> int:
        """How many events to claim now: none until a batch's worth of threads is free."""
        free = self.concurrency - len(self.running)
        if free <= 0 or (self.running and free < self.batch):
            return 0
        return free

    def _claim_and_start(self) -> int:
        free = self.wanted()
        if not free:
            return 0
        try:
            events = processing.claim_events(free, self.name)
        except DatabaseError:
            logger.warning(
                "Could not claim events; retrying after the poll interval",
                exc_info=True,
            )
            connections.close_all()
            return 0
        for event in events:
            with self.lock:
                self.running.add(event.pk)
            self.pool.submit(self._run, event)
        return len(events)

    def _run(self, event: Event) -> None:
        try:
            close_old_connections()
            processing.run_claimed(event)
            self.processed += 1
        except Exception:
            # The lease lapses and the event runs again: nothing is lost.
            logger.exception(
                "Processing event %s failed outside its handlers", event.pk
            )
        finally:
            close_old_connections()
            with self.lock:
                self.running.discard(event.pk)
            self.wakeup.set()

    def _renew(self) -> None:
        with self.lock:
            running = set(self.running)
        if running:
            try:
                processing.renew(running, self.name)
            except DatabaseError:
                logger.warning("Could not renew leases", exc_info=True)
