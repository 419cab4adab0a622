"""The loop the worker and inline modes share: claim what is due in batches, run each
batch's share on a lane (a thread with its own connection), renew the leases of what
waits, and sleep until woken or the poll interval passes."""

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
from webhooks.processing import batches, claims

logger = logging.getLogger("webhooks")


def worker_name(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:100]


class Runner:
    def __init__(self, concurrency: int, name: str) -> None:
        self.concurrency = concurrency
        self.name = name
        #: Events one lane takes per claim: a claim of WEBHOOKS_BATCH_SIZE fills
        #: every lane, and a small burst is still shared between them.
        self.share = max(1, conf.BATCH_SIZE // concurrency)
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="webhooks")
        #: Claimed and not yet recorded, for the lease renewal.
        self.running: set[int] = set()
        self.busy_lanes = 0
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
                # Cleared before the claim: a wake-up during it is not lost.
                self.wakeup.clear()
                started = self._claim_and_start()
                if time.monotonic() - renewed > conf.LEASE_SECONDS / 3:
                    self._renew()
                    renewed = time.monotonic()
                if once and not started and not self.busy_lanes:
                    break
                if not started or self.busy_lanes >= self.concurrency:
                    self.wakeup.wait(conf.POLL_SECONDS if not once else 0.05)
        finally:
            # Finish what runs: a stop never abandons a handler half way.
            self.pool.shutdown(wait=True)
            close_old_connections()

    def wanted(self) -> int:
        """How many events to claim now: a share for each free lane."""
        return max(0, self.concurrency - self.busy_lanes) * self.share

    def _claim_and_start(self) -> int:
        wanted = self.wanted()
        if not wanted:
            return 0
        try:
            events = claims.claim_events(wanted, self.name)
        except DatabaseError:
            logger.warning(
                "Could not claim events; retrying after the poll interval",
                exc_info=True,
            )
            connections.close_all()
            return 0
        if not events:
            return 0
        # Dealt round the free lanes, so a small burst runs side by side.
        lanes = min(self.concurrency - self.busy_lanes, len(events))
        with self.lock:
            self.running.update(event.pk for event in events)
            self.busy_lanes += lanes
        for lane in range(lanes):
            self.pool.submit(self._run, events[lane::lanes])
        return len(events)

    def _run(self, events: list[Event]) -> None:
        try:
            close_old_connections()
            outcomes = batches.run_batch(events, stopping=self.stopping.is_set)
            with self.lock:
                self.processed += len(outcomes)
        except Exception:
            # The leases lapse and the events run again: nothing is lost.
            logger.exception(
                "Processing events %s failed outside their handlers",
                [event.pk for event in events],
            )
            close_old_connections()
        finally:
            with self.lock:
                self.running.difference_update(event.pk for event in events)
                self.busy_lanes -= 1
            self.wakeup.set()

    def _renew(self) -> None:
        with self.lock:
            running = set(self.running)
        if running:
            try:
                claims.renew(running, self.name)
            except DatabaseError:
                logger.warning("Could not renew leases", exc_info=True)
