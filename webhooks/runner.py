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

from webhooks import processing
from webhooks.conf import conf

logger = logging.getLogger("webhooks")


def worker_name(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:100]


class Runner:
    def __init__(self, concurrency: int, name: str) -> None:
        self.concurrency = concurrency
        self.name = name
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

    def _claim_and_start(self) -> int:
        free = self.concurrency - len(self.running)
        if free <= 0:
            return 0
        try:
            ids = processing.claim(free, self.name)
        except DatabaseError:
            logger.warning(
                "Could not claim events; retrying after the poll interval",
                exc_info=True,
            )
            connections.close_all()
            return 0
        for event_id in ids:
            with self.lock:
                self.running.add(event_id)
            self.pool.submit(self._run, event_id)
        return len(ids)

    def _run(self, event_id: int) -> None:
        try:
            close_old_connections()
            processing.run(event_id, self.name)
            self.processed += 1
        except Exception:
            # The lease lapses and the event runs again: nothing is lost.
            logger.exception(
                "Processing event %s failed outside its handlers", event_id
            )
        finally:
            close_old_connections()
            with self.lock:
                self.running.discard(event_id)
            self.wakeup.set()

    def _renew(self) -> None:
        with self.lock:
            running = set(self.running)
        if running:
            try:
                processing.renew(running, self.name)
            except DatabaseError:
                logger.warning("Could not renew leases", exc_info=True)
