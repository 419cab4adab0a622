"""SIGKILL a worker mid-handler while another works: the event runs again once its
lease expires, ends succeeded, and nothing else is lost or run twice."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import query
from tests.servers import Postgres, Project

pytestmark = pytest.mark.postgres

CREATE_EVENTS = """
from django.utils import timezone
from webhooks.models import Endpoint, Event
endpoint = Endpoint.objects.create(slug="open", provider="none")
now = timezone.now()
Event.objects.bulk_create(
    Event(endpoint=endpoint, provider="none", delivery_id=f"d{n}", event_type="tick",
          body=b"{}", payload={}, next_attempt_at=now)
    for n in range(COUNT)
)
Event.objects.create(endpoint=endpoint, provider="none", delivery_id="stuck",
    event_type="tick", body=b"{}", payload=PAYLOAD, next_attempt_at=now)
"""
COUNT = 60


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.1)


def test_worker_killed_mid_handler_its_event_runs_again_elsewhere(
    database: Postgres, tmp_path: Path
) -> None:
    project = Project(database.url, None, settings="tests.settings_workers")
    project.manage("migrate", "--run-syncdb", "--verbosity", "0")
    marker = tmp_path / "started"
    payload = repr({"marker": str(marker), "sleep": 60})
    code = CREATE_EVENTS.replace("COUNT", str(COUNT)).replace("PAYLOAD", payload)
    project.manage("shell", "-c", code)

    workers = [project.worker("--concurrency", "2") for _ in range(2)]
    try:
        wait_until(lambda: marker.exists() and marker.read_text() != "")
        doomed = next(w for w in workers if w.pid == int(marker.read_text()))
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate()
        survivor = next(w for w in workers if w is not doomed)

        def all_succeeded() -> bool:
            counts = dict(
                query(
                    database.url,
                    "SELECT status, count(*) FROM webhooks_event GROUP BY 1",
                )
            )
            return counts == {"succeeded": COUNT + 1}

        wait_until(all_succeeded)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
                worker.communicate(timeout=60)

    calls, events = query(
        database.url, "SELECT count(*), count(DISTINCT event_id) FROM workerapp_call"
    )[0]
    assert (calls, events) == (COUNT + 1, COUNT + 1)  # every event ran to the end once
    stuck = query(
        database.url,
        "SELECT e.attempts, c.attempt, c.pid FROM webhooks_event e "
        "JOIN workerapp_call c ON c.event_id = e.id WHERE e.delivery_id = 'stuck'",
    )
    assert stuck == [(2, 2, survivor.pid)]
    outcomes = query(
        database.url,
        "SELECT a.number, a.outcome FROM webhooks_attempt a JOIN webhooks_event e "
        "ON a.event_id = e.id WHERE e.delivery_id = 'stuck' ORDER BY a.number",
    )
    # The killed run left no attempt: its record rolled back with its handler's write
    # (attempts = 2 still counts it).
    assert outcomes == [(2, "succeeded")]
