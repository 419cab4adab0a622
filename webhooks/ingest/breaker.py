"""While the database is known to be down, deliveries are answered 503 at once.

With PostgreSQL stopped, each delivery that asks for a connection waits for the
pool's timeout (seconds) before its 503, and a flood of provider retries then
holds as many server connections open. The first connection failure trips the
process's :data:`breaker`: from then on ingest asks the database nothing (the
steps answer what they can without it, anything else is 503 with Retry-After)
while one background thread probes it every :data:`PROBE_SECONDS`. The first
probe that connects and runs a query closes the breaker again.

A connection failure is told apart from the failure of one statement by the
driver's error: no SQLSTATE (the client could not connect, the pool timed out,
the server went away without a word), one of class 08 (connection exception),
or 57P03 (the server is starting or shutting down). A session the server ended
on its own (57P01, as a fast shutdown does, but also an operator's
``pg_terminate_backend``) does not trip it: the next connection attempt tells.
A deadlock, a lock timeout or a refused value leave it closed; so does every
SQLite error, which has no server to lose.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from django.db import DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger("webhooks")

PROBE_SECONDS = 1.0
#: SQLSTATE classes that say the connection, not the statement, failed.
CONNECTION_CLASSES = ("08", "57P03")


def connection_lost(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be reached, rather than refused a statement."""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    # Django's error wraps the driver's; psycopg's errors carry the SQLSTATE (None
    # when the failure is the client's own), sqlite3's carry none at all.
    cause = error.__cause__
    if isinstance(cause, TimeoutError):
        return True  # connecting took longer than its timeout
    if cause is None or not hasattr(cause, "sqlstate"):
        return False
    sqlstate = cause.sqlstate
    return sqlstate is None or str(sqlstate).startswith(CONNECTION_CLASSES)


class Breaker:
    """Open while the database is known to be down; one per process and database alias."""

    def __init__(self, alias: str = "default", probe_seconds: float = PROBE_SECONDS):
        self.alias = alias
        self.probe_seconds = probe_seconds
        self._lock = threading.Lock()
        self._open = False
        self._wake = threading.Event()
        #: How often it tripped and how many probes failed, for tests and the logs.
        self.trips = 0
        self.failed_probes = 0

    @property
    def open(self) -> bool:
        return self._open

    def saw(self, error: BaseException) -> None:
        """Trip if ``error`` is a connection failure; any other error changes nothing."""
        if connection_lost(error):
            self.trip()

    def trip(self) -> None:
        with self._lock:
            if self._open:
                return
            self._open = True
            self.trips += 1
        logger.warning(
            "Database %r unreachable: deliveries are answered 503 without asking it "
            "until a probe connects",
            self.alias,
        )
        threading.Thread(
            target=self._probe_until_reachable,
            name="webhooks-database-probe",
            daemon=True,
        ).start()

    def _probe_until_reachable(self) -> None:
        while True:
            self._wake.wait(self.probe_seconds)
            self._wake.clear()
            if self.reachable():
                break
            self.failed_probes += 1
        with self._lock:
            self._open = False
        logger.warning("Database %r reachable again: deliveries are stored", self.alias)

    def reachable(self) -> bool:
        """One connection and one query, in this thread; never raises."""
        connection = connections[self.alias]
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            return False
        except Exception:
            logger.exception("Probing database %r failed", self.alias)
            return False
        finally:
            with contextlib.suppress(DatabaseError):
                connection.close()
        return True

    def probe_now(self) -> None:
        """Have the probe try at once rather than at its next period."""
        self._wake.set()

    def reset(self) -> None:
        """Closed, as a new process starts (for tests); a running probe ends by itself."""
        with self._lock:
            self._open = False


breaker = Breaker()
